"""The outbox keeps every committed record until acked, never reuses a seq, and never drops silently."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.outbox import Outbox, OutboxError
from protocols.messages import Event, EventType, Reading

Draft = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]
DAY_S = 86400.0


def reading(i: int, device: str = "b1-master") -> Draft:
    return {"kind": "reading", "ts": 1_700_000_000_000 + i, "device": device, "point": "energy_import",
            "quantity": "energy_active_import", "value": 1000.0 + i}


def event(i: int) -> Draft:
    return {"kind": "event", "ts": 1_700_000_000_000 + i, "type": "device_offline", "device": "b1-master",
            "point": None, "message": "timeout", "data": {"error": "timeout"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def open_outbox(path: Path, max_records: int = 1000, max_age_s: float = 30 * DAY_S,
                clock: Callable[[], float] = time.time) -> Outbox:
    return Outbox(path, max_records=max_records, max_age_s=max_age_s, clock=clock)


def all_seqs(outbox: Outbox) -> list[int]:
    return [r.seq for r in outbox.read_from(1, 10**9, 10**12)]


def dropped_events(outbox: Outbox) -> list[Event]:
    return [r for r in outbox.read_from(1, 10**9, 10**12)
            if isinstance(r, Event) and r.type is EventType.RECORDS_DROPPED]


def test_seqs_are_shared_by_kinds_persisted_and_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = open_outbox(path)
    assert outbox.add([reading(1), event(2), reading(3)]) == [1, 2, 3]
    outbox.ack(3)
    assert outbox.stats().backlog == 0
    outbox.close()

    outbox = open_outbox(path)
    assert outbox.add([reading(4)]) == [4], "the counter must survive a restart even with nothing left to send"
    records = outbox.read_from(1, 10, 10**6)
    assert [type(r) for r in records] == [Reading] and records[0].seq == 4
    stats = outbox.stats()
    assert (stats.backlog, stats.last_seq, stats.acked_through, stats.oldest_ts) == (1, 4, 3, 1_700_000_000_004)
    outbox.close()


def test_add_is_all_or_nothing(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.sqlite")
    outbox.add([reading(1)])
    bad = reading(3)
    bad["value"] = "high"
    with pytest.raises(ValueError, match=r"record 1 \(reading\): value"):
        outbox.add([reading(2), bad, reading(4)])
    with pytest.raises(ValueError, match="kind must be 'reading' or 'event'"):
        outbox.add([{"ts": 1}])
    with pytest.raises(ValueError, match="record 0 \\(reading\\)"):
        outbox.add([{**reading(5), "value": float("nan")}])
    assert all_seqs(outbox) == [1]
    assert outbox.add([reading(2), reading(3)]) == [2, 3], "a refused add must not burn seqs"
    outbox.close()


def test_read_from_honours_limit_and_bytes(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.sqlite")
    outbox.add([reading(i) for i in range(10)])
    one = len(outbox.read_from(1, 1, 10**6)[0].model_dump_json(exclude_none=True)) + 1
    assert [r.seq for r in outbox.read_from(3, 4, 10**6)] == [3, 4, 5, 6]
    assert [r.seq for r in outbox.read_from(1, 100, 3 * one)] == [1, 2, 3]
    assert [r.seq for r in outbox.read_from(1, 100, 1)] == [1], "one oversized record still goes alone"
    assert outbox.read_from(11, 100, 10**6) == []
    outbox.close()


def test_ack_deletes_through_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = open_outbox(path)
    outbox.add([reading(i) for i in range(10)])
    outbox.ack(4)
    outbox.ack(2)  # a late, lower ack changes nothing
    assert all_seqs(outbox) == [5, 6, 7, 8, 9, 10]
    outbox.close()
    outbox = open_outbox(path)
    assert outbox.stats().acked_through == 4 and all_seqs(outbox) == [5, 6, 7, 8, 9, 10]
    outbox.close()


def test_ack_beyond_last_seq_moves_the_counter_past_it(tmp_path: Path) -> None:
    """A replaced outbox must not hand out seqs the hub already holds: they would be taken as duplicates."""
    outbox = open_outbox(tmp_path / "outbox.sqlite")
    outbox.add([reading(1), reading(2)])
    outbox.ack(500)
    assert outbox.add([reading(3)]) == [501]
    outbox.close()


def test_max_records_drops_oldest_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = open_outbox(path, max_records=10)
    outbox.add([reading(i) for i in range(8)])
    assert outbox.add([reading(i) for i in range(8, 13)]) == [9, 10, 11, 12, 13]
    # 13 records + the event must fit in 10: seqs 1-4 go, the event takes seq 14.
    assert all_seqs(outbox) == list(range(5, 15))
    (dropped,) = dropped_events(outbox)
    assert dropped.seq == 14
    assert dropped.data == {"ranges": [[1, 4]], "count": 4, "by_age": 0, "by_limit": 4}
    assert outbox.stats().dropped_total == 4
    outbox.close()
    outbox = open_outbox(path, max_records=10)
    assert outbox.stats().dropped_total == 4 and outbox.stats().backlog == 10
    assert outbox.add([reading(20)]) == [15]
    outbox.close()


def test_max_age_drops_old_records_and_says_so(tmp_path: Path) -> None:
    clock = FakeClock()
    outbox = open_outbox(tmp_path / "outbox.sqlite", max_age_s=DAY_S, clock=clock)
    outbox.add([reading(1), reading(2), reading(3)])
    clock.now += DAY_S / 2
    outbox.add([reading(4)])
    clock.now += DAY_S / 2 + 1
    outbox.add([reading(5)])
    assert all_seqs(outbox) == [4, 5, 6]
    (dropped,) = dropped_events(outbox)
    assert dropped.seq == 6 and dropped.ts == int(clock.now * 1000)
    assert dropped.data == {"ranges": [[1, 3]], "count": 3, "by_age": 3, "by_limit": 0}
    outbox.close()


def test_sustained_overflow_accounts_for_every_seq(tmp_path: Path) -> None:
    """However long the outage, each seq is in the outbox, acked, or named by a records_dropped event in it."""
    rng = random.Random(7)
    outbox = open_outbox(tmp_path / "outbox.sqlite", max_records=100)
    removed_by_ack = 0
    for _ in range(300):
        outbox.add([reading(i) for i in range(rng.randint(1, 40))])
        if rng.random() < 0.05:
            through = rng.randint(0, outbox.stats().last_seq)
            removed_by_ack += sum(1 for s in all_seqs(outbox) if s <= through)
            outbox.ack(through)
    stats = outbox.stats()
    held = set(all_seqs(outbox))
    named = {s for e in dropped_events(outbox) for a, b in e.data["ranges"] for s in range(a, b + 1)}
    acked = set(range(1, stats.acked_through + 1))
    assert acked | held | named == set(range(1, stats.last_seq + 1))
    assert stats.backlog == len(held) <= 100
    assert stats.last_seq == len(held) + removed_by_ack + stats.dropped_total, "each drop counted exactly once"
    outbox.close()


WRITER = """
import sys
from edge.outbox import Outbox
outbox = Outbox(sys.argv[1], max_records=10**9, max_age_s=10**9)
n = 0
while True:
    size = 1 + n % 17
    seqs = outbox.add([{"kind": "reading", "ts": n, "device": "d", "point": "p", "quantity": "q", "value": 1.0}] * size)
    n += 1
    print(seqs[0], seqs[-1], flush=True)
"""


def test_sigkill_mid_stream_loses_no_committed_record(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    confirmed: list[int] = []
    for _round in range(3):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        lines = 0
        deadline = time.monotonic() + 10
        while lines < 40 + random.randint(0, 40) and time.monotonic() < deadline:
            first, last = map(int, child.stdout.readline().split())
            confirmed.extend(range(first, last + 1))
            lines += 1
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert lines >= 40, "the writer did not get going"

    outbox = open_outbox(path, max_records=10**9)
    seqs = all_seqs(outbox)
    assert set(confirmed) <= set(seqs), "a record whose add() returned was lost"
    assert seqs == list(range(1, seqs[-1] + 1)), "seqs must be unique and gapless across kills"
    assert outbox.add([reading(0)]) == [seqs[-1] + 1]
    outbox.close()


def test_unusable_files_are_refused_and_left_alone(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database, but it may be someone's data" * 100)
    with pytest.raises(OutboxError, match=r"garbage\.sqlite is not a readable outbox .*move it aside"):
        open_outbox(garbage)
    assert garbage.read_bytes().startswith(b"this is not a database")

    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(OutboxError, match="not an EstateHub outbox"):
        open_outbox(foreign)

    damaged = tmp_path / "damaged.sqlite"
    outbox = open_outbox(damaged, max_records=10**6)
    outbox.add([reading(i) for i in range(2000)])
    outbox.close()
    with damaged.open("r+b") as f:
        f.seek(damaged.stat().st_size // 2)
        f.write(os.urandom(4 * 4096))
    with pytest.raises(OutboxError, match="damaged|not a readable outbox"):
        open_outbox(damaged)

    with pytest.raises(OutboxError, match="cannot be opened"):
        open_outbox(tmp_path / "no-such-dir" / "outbox.sqlite")


def test_second_process_cannot_share_an_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = open_outbox(path)
    probe = "import sys; from edge.outbox import Outbox; Outbox(sys.argv[1], max_records=10, max_age_s=1)"
    result = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and "in use by another process" in result.stderr
    outbox.close()
