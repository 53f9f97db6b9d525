"""Timestamps come back as aware UTC on both backends, so pages in Beijing time show the right hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import StatementError

from cloud.db import session_factory
from cloud.ingest.models import EdgeStateRow

BEIJING = timezone(timedelta(hours=8))


def test_edge_last_seen_reads_back_as_the_same_aware_instant(engine: Engine) -> None:
    seen = datetime(2026, 11, 23, 9, 30, tzinfo=BEIJING)
    with session_factory(engine).begin() as session:
        session.add(EdgeStateRow(site="s1", edge="e1", last_seen=seen, stored=[], dropped=[], acked_through=0))
    with session_factory(engine)() as session:
        stored = session.scalars(select(EdgeStateRow.last_seen)).one()
    assert stored is not None and stored.tzinfo is not None
    assert stored == seen and stored.astimezone(UTC).hour == 1


def test_a_naive_timestamp_is_refused_rather_than_guessed(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_factory(engine).begin() as session:
        session.add(EdgeStateRow(site="s1", edge="e1", last_seen=datetime(2026, 11, 23, 9, 30), stored=[],
                                 dropped=[], acked_through=0))  # fmt: skip
