"""Receiver-side seq accounting: the ack never passes a gap, re-deliveries are not new, drops are accounted."""

from protocols.sequence import SeqTracker


def test_in_order_delivery_advances_the_ack() -> None:
    t = SeqTracker()
    assert t.add([1, 2, 3]) == [1, 2, 3]
    assert t.acked_through == 3 and t.gaps() == []


def test_a_gap_holds_the_ack_until_it_is_filled() -> None:
    t = SeqTracker()
    t.add([1, 2, 5, 6, 9])
    assert t.acked_through == 2
    assert t.gaps() == [(3, 4), (7, 8)]
    t.add([3, 4])
    assert t.acked_through == 6 and t.gaps() == [(7, 8)]


def test_redelivery_is_not_new() -> None:
    t = SeqTracker()
    t.add([1, 2, 4])
    assert t.add([1, 2, 3, 4, 5]) == [3, 5]
    assert t.acked_through == 5


def test_dropped_ranges_count_as_accounted() -> None:
    t = SeqTracker()
    t.add([1, 2, 10])
    t.account([(3, 9)])
    assert t.acked_through == 10 and t.gaps() == []


def test_restart_from_a_stored_high_water_mark() -> None:
    t = SeqTracker(acked_through=100)
    assert t.add([99, 100, 101]) == [101]
    assert t.acked_through == 101
