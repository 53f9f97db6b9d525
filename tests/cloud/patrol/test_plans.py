"""Plans into rounds: recurrence, night shifts across midnight, windows, idempotent generation; suggested routes."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from cloud.patrol.models import PatrolPlan, PatrolRound, Recurrence, RoundCheckpoint
from cloud.patrol.plans import PlanError, generate, generate_ahead, round_starts, validate, windows
from cloud.patrol.routes_tour import shortest_tour, tour_length
from tests.cloud.patrol.conftest import DAY, ROUND_START, World


def plan(**overrides: object) -> PatrolPlan:
    values: dict[str, object] = dict(
        recurrence=Recurrence.DAILY, every_n_days=1, start_date=date(2026, 3, 1), end_date=None,
        shift_start=time(22, 0), shift_end=time(6, 0), round_every_min=120, round_minutes=45,
        tolerance_min=3, grace_min=5, assignees=[1],
    )  # fmt: skip
    values.update(overrides)
    return PatrolPlan(**values)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_a_night_shift_crosses_midnight() -> None:
    starts = list(round_starts(plan(), date(2026, 3, 2), date(2026, 3, 2)))
    assert starts == [local(2, 22), local(3, 0), local(3, 2), local(3, 4)]  # 06:00 would end after the shift


def test_weekdays_and_every_n_days() -> None:
    weekdays = plan(recurrence=Recurrence.WEEKDAYS, shift_start=time(9), shift_end=time(10), round_every_min=60)
    days = [s.date() for s in round_starts(weekdays, date(2026, 3, 1), date(2026, 3, 8))]
    assert days == [date(2026, 3, d) for d in (2, 3, 4, 5, 6)]  # 1 and 7-8 March 2026 are a weekend
    every3 = plan(recurrence=Recurrence.EVERY_N_DAYS, every_n_days=3, shift_start=time(9), shift_end=time(10),
                  round_every_min=60)  # fmt: skip
    assert [s.day for s in round_starts(every3, date(2026, 3, 1), date(2026, 3, 10))] == [1, 4, 7, 10]


def test_ordered_windows_follow_the_walking_times_and_unordered_span_the_round() -> None:
    p = plan(round_minutes=30)
    ordered = windows(p, True, ROUND_START, [120, 300])
    assert ordered[1].due_from == ROUND_START + timedelta(minutes=4)
    assert ordered[1].due_until == ROUND_START + timedelta(minutes=10)
    assert ordered[1].closes_at == ROUND_START + timedelta(minutes=15)
    unordered = windows(p, False, ROUND_START, [120, 300])
    assert {(w.due_from, w.due_until) for w in unordered} == {(ROUND_START, ROUND_START + timedelta(minutes=30))}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"assignees": []}, "assign a guard or a team"),
        ({"round_every_min": 30}, "round_every_min must be at least round_minutes"),
        ({"shift_end": time(22, 30)}, "shorter than one round"),
        ({"recurrence": Recurrence.EVERY_N_DAYS, "every_n_days": 0}, "every_n_days must be at least 1"),
    ],
)
def test_a_plan_that_cannot_make_sense_is_refused_with_the_field_to_fix(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        validate(plan(**overrides))


def test_generating_again_creates_nothing_new(world: World) -> None:
    with world.sessions.begin() as session:
        p = session.get_one(PatrolPlan, world.plan_id)
        assert generate(session, p, DAY, DAY, ROUND_START - timedelta(days=1)) == 0
        assert generate_ahead(session, ROUND_START - timedelta(minutes=1)) == 2  # 3 and 4 March: two days ahead
        assert generate_ahead(session, ROUND_START - timedelta(minutes=1)) == 0
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PatrolRound)) == 3
        assert session.scalar(select(func.count()).select_from(RoundCheckpoint)) == 3 * 3


def test_the_suggested_tour_is_the_shortest_one() -> None:
    points = [(0.0, 0.0), (50.0, 80.0), (100.0, 0.0), (0.0, 80.0), (100.0, 80.0), (50.0, 0.0), (20.0, 40.0)]
    order = shortest_tour(points)
    assert order[0] == 0 and sorted(order) == list(range(len(points)))
    best = min(tour_length(points, (0, *rest)) for rest in itertools.permutations(range(1, len(points))))
    assert math.isclose(tour_length(points, order), best)
