"""Badge reads from edge scanners (stored events) become strong scans at the time of the read, once each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from cloud.ingest.models import EventRow
from cloud.patrol.edge_scans import process_edge_scans
from cloud.patrol.keys import badge_code
from cloud.patrol.models import CheckpointResult, EdgeScanCursor, PatrolScan, ScanSource, Trust
from tests.cloud.patrol.conftest import World, at


def store_event(
    world: World, seq: int, ts: datetime, checkpoint: str, code: str, site: str = "px", edge: str = "e1",
    id: int | None = None,
) -> None:  # fmt: skip
    with world.sessions.begin() as session:
        session.add(EventRow(id=id, site=site, edge=edge, seq=seq, ts=int(ts.timestamp() * 1000), type="patrol_scan",
                             device="garage-scanner", point=None, message=f"scan at {checkpoint}",
                             data={"checkpoint": checkpoint, "code": code, "scanner": "garage-scanner"}))  # fmt: skip


def badge(world: World, user_id: int, site_id: int | None = None) -> str:
    with world.sessions.begin() as session:
        return badge_code(session, site_id or world.site_x, user_id)


def test_a_badge_read_counts_as_a_strong_scan_at_the_time_of_the_read(world: World) -> None:
    store_event(world, 1, at(6), "B", badge(world, world.guard.id))
    with world.sessions.begin() as session:
        report = process_edge_scans(session, now=at(25))  # delivered late, after a broker outage
    assert (report.accepted, report.rejected) == (1, 0)
    slot = world.slots()["B"]
    assert slot.result is CheckpointResult.ON_TIME and slot.scanned_at == at(6)
    with world.sessions() as session:
        scan = session.scalars(select(PatrolScan)).one()
        assert (scan.trust, scan.source, scan.guard_id, scan.received_at) == (
            Trust.STRONG, ScanSource.EDGE, world.guard.id, at(25))  # fmt: skip


def test_the_cursor_resumes_and_never_counts_an_event_twice(world: World) -> None:
    store_event(world, 1, at(6), "B", badge(world, world.guard.id))
    with world.sessions.begin() as session:
        process_edge_scans(session, now=at(7))
    store_event(world, 2, at(8), "A", badge(world, world.guard.id))
    with world.sessions.begin() as session:
        report = process_edge_scans(session, now=at(9))
    assert (report.accepted, report.rejected) == (1, 0)
    with world.sessions() as session:
        assert len(session.scalars(select(PatrolScan)).all()) == 2


def test_bad_badges_are_rejected_counted_and_the_rest_of_the_batch_goes_through(world: World) -> None:
    store_event(world, 1, at(3), "A", "EHP1.b.1.1.99.forgedforgedforg")
    store_event(world, 2, at(4), "A", badge(world, world.guard_y.id, world.site_y))  # a badge of another site
    store_event(world, 3, at(5), "NOPE", badge(world, world.guard.id))  # scanner config names no checkpoint
    store_event(world, 4, at(6), "B", badge(world, world.guard.id))
    before = world.counts()["patrol_scans"]
    with world.sessions.begin() as session:
        report = process_edge_scans(session, now=at(7))
    assert (report.accepted, report.rejected) == (1, 3)
    assert world.counts()["patrol_scans"] == before + 1
    with world.sessions() as session:
        cursor = session.scalars(select(EdgeScanCursor)).one()
        assert cursor.rejected == 3 and "no checkpoint 'NOPE'" in (cursor.last_error or "")


def test_a_scan_of_another_edge_committed_late_with_a_lower_id_is_not_skipped(world: World) -> None:
    """Two ingest workers on PostgreSQL can commit edge e2's event (id 5) after edge e1's (id 10)."""
    store_event(world, 1, at(3), "A", badge(world, world.guard.id), edge="e1", id=10)
    with world.sessions.begin() as session:
        assert process_edge_scans(session, now=at(4)).accepted == 1
    store_event(world, 1, at(6), "B", badge(world, world.guard.id), edge="e2", id=5)
    with world.sessions.begin() as session:
        assert process_edge_scans(session, now=at(7)).accepted == 1
    assert world.slots()["B"].scanned_at == at(6)
