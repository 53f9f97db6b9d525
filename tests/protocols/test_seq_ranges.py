"""Seq sets as merged ranges: the ack never passes a gap, re-deliveries change nothing, drops fill gaps."""

from protocols.seq_ranges import contains, contiguous_through, gaps, merge, overlaps, runs


def test_in_order_batches_merge_into_one_run() -> None:
    held = merge([[1, 100], [101, 200]])
    assert held == [[1, 200]] and contiguous_through(held) == 200 and gaps(held) == []


def test_a_gap_holds_the_ack_until_it_is_filled() -> None:
    held = merge([[1, 2], [5, 6], [9, 9]])
    assert contiguous_through(held) == 2
    assert gaps(held) == [[3, 4], [7, 8]]
    held = merge([*held, [3, 4]])
    assert contiguous_through(held) == 6 and gaps(held) == [[7, 8]]


def test_redelivery_changes_nothing() -> None:
    held = merge([[1, 10]])
    assert merge([*held, [3, 7]]) == held
    assert contains(held, 7) and not contains(held, 11)
    assert overlaps(held, 10, 20) and not overlaps(held, 11, 20)


def test_dropped_ranges_reported_by_the_edge_fill_the_gap() -> None:
    held = merge([[1, 2], [10, 10], [3, 9]])
    assert contiguous_through(held) == 10


def test_without_seq_1_nothing_is_acked() -> None:
    assert contiguous_through(merge([[2, 5]])) == 0
    assert runs([5, 3, 4, 9]) == [[3, 5], [9, 9]]
