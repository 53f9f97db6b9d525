"""Edge scanner reads (``patrol_scan`` events stored by ingest) turned into scans of rounds.

A cursor row per edge remembers the last event read, so the intake resumes where it stopped after a
restart. Per edge, because ingest writes an edge's events under that edge's row lock: their ids commit in
order, so nothing can appear later behind the cursor (across edges, with several ingest workers on
PostgreSQL, ids can commit out of order). Cursor rows are locked while a batch is processed (SKIP LOCKED),
so hub replicas share the edges. Each scan carries the edge's
time of the read (``events.ts``): a badge read during a broker outage counts when it happened, not when
it arrived. Each event is processed in a savepoint, so a bad badge is counted as rejected and the rest of
the batch still goes through; ``patrol_scans.event_id`` is unique, so no event counts twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, func, select, tuple_
from sqlalchemy.orm import Session

from cloud.db import session_factory, transaction
from cloud.ingest.models import EventRow
from cloud.patrol.models import EdgeScanCursor
from cloud.patrol.plans import dialect_insert
from cloud.patrol.scans import ScanRejected, accept_badge_scan
from cloud.registry.models import Site
from cloud.workers import PeriodicWorker
from protocols.messages import EventType

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class IntakeReport:
    accepted: int = 0
    rejected: int = 0


def _cursors(session: Session, edges: set[tuple[str, str]]) -> dict[tuple[str, str], EdgeScanCursor]:
    """The edges' cursor rows, made on first use and locked; an edge another replica holds is skipped."""
    session.execute(
        dialect_insert(session, EdgeScanCursor)
        .values([{"site": site, "edge": edge, "last_event_id": 0, "rejected": 0} for site, edge in sorted(edges)])
        .on_conflict_do_nothing(index_elements=["site", "edge"])
    )
    rows = session.scalars(
        select(EdgeScanCursor)
        .where(tuple_(EdgeScanCursor.site, EdgeScanCursor.edge).in_(sorted(edges)))
        .order_by(EdgeScanCursor.site, EdgeScanCursor.edge)
        .with_for_update(skip_locked=True)
    )
    return {(c.site, c.edge): c for c in rows}


def process_edge_scans(session: Session, now: datetime | None = None, batch: int = BATCH) -> IntakeReport:
    """Process the next batch of scan events after each edge's cursor."""
    now = now or datetime.now(UTC)
    after = func.coalesce(EdgeScanCursor.last_event_id, 0)
    events = session.scalars(
        select(EventRow)
        .outerjoin(EdgeScanCursor, and_(EdgeScanCursor.site == EventRow.site, EdgeScanCursor.edge == EventRow.edge))
        .where(EventRow.type == EventType.PATROL_SCAN.value, EventRow.id > after)
        .order_by(EventRow.id)
        .limit(batch)
    ).all()
    report = IntakeReport()
    if not events:
        return report
    cursors = _cursors(session, {(e.site, e.edge) for e in events})
    sites: dict[str, int] = {code: id for code, id in session.execute(select(Site.code, Site.id))}
    for event in events:
        cursor = cursors.get((event.site, event.edge))
        if cursor is None or event.id <= cursor.last_event_id:
            continue  # another replica has this edge, or got here first
        try:
            with session.begin_nested():
                site_id = sites.get(event.site)
                if site_id is None:
                    raise ScanRejected(f"site {event.site!r} is not registered")
                accept_badge_scan(
                    session, site_id=site_id, checkpoint_code=str(event.data.get("checkpoint", "")),
                    badge=str(event.data.get("code", "")), scanned_at=datetime.fromtimestamp(event.ts / 1000, UTC),
                    event_id=event.id, now=now,
                )  # fmt: skip
            report.accepted += 1
        except ScanRejected as exc:
            report.rejected += 1
            cursor.rejected += 1
            cursor.last_error = f"event {event.id} ({event.device}): {exc.reason}"
            log.warning("patrol edge scan from %s/%s rejected: %s", event.site, event.edge, cursor.last_error)
        cursor.last_event_id = event.id
    session.flush()
    return report


class EdgeScanWorker(PeriodicWorker):
    """Runs the intake every ``interval_s`` on a background thread; safe on every hub replica."""

    name = "patrol-edge-scans"

    def __init__(self, engine: Engine, interval_s: float = 1.0) -> None:
        self._sessions = session_factory(engine)
        super().__init__(interval_s)

    def run_once(self) -> int:
        """Drain what is there; returns events processed."""
        total = 0
        while not self._stop.is_set():
            with transaction(self._sessions) as session:
                report = process_edge_scans(session)
            done = report.accepted + report.rejected
            total += done
            if done < BATCH:
                break
        return total
