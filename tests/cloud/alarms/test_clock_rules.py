"""Rules that depend on the clock, evaluated with a controllable ``now``: meter and edge offline, night leaks,
abnormal daily consumption."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from cloud.alarms.evaluator import Evaluator
from cloud.alarms.models import AlarmState, RuleKind
from cloud.db import session_factory
from cloud.ingest.models import EdgeStateRow
from tests.cloud.alarms.helpers import ELEC_B, WATER_B, add_rule, alarms, every, samples, transitions
from tests.cloud.api.hub_app import HOUR_MS, T0, Hub

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAST_SEEDED = T0 + timedelta(milliseconds=48 * HOUR_MS)
"""The seeded meters' last reading."""


def run(hub: Hub, now: datetime) -> None:
    Evaluator(hub.engine).run_once(now)


def test_a_meter_silent_for_n_poll_intervals_raises_and_its_next_reading_clears(hub: Hub) -> None:
    add_rule(hub, RuleKind.METER_OFFLINE, "silent", meter_id=hub.ids["meter_b"],
             params={"interval_s": 60, "intervals": 3})  # fmt: skip
    run(hub, LAST_SEEDED + timedelta(seconds=170))
    assert alarms(hub.engine) == [], "170 s is under three 60 s intervals"
    run(hub, LAST_SEEDED + timedelta(seconds=200))
    (alarm,) = alarms(hub.engine)
    assert alarm.meter_id == hub.ids["meter_b"] and alarm.raised_at == LAST_SEEDED + timedelta(seconds=180)
    run(hub, LAST_SEEDED + timedelta(seconds=260))
    assert len(alarms(hub.engine)) == 1, "still silent: still the same alarm"

    samples(hub.engine, ELEC_B, [(LAST_SEEDED + timedelta(seconds=300), 180.0)])
    run(hub, LAST_SEEDED + timedelta(seconds=310))
    (alarm,) = alarms(hub.engine)
    assert alarm.state is AlarmState.CLEARED and alarm.cleared_at == LAST_SEEDED + timedelta(seconds=300)


def test_a_site_wide_offline_rule_watches_only_meters_that_ever_reported(hub: Hub) -> None:
    add_rule(hub, RuleKind.METER_OFFLINE, "silent", params={"interval_s": 60, "intervals": 3})
    run(hub, LAST_SEEDED + timedelta(minutes=5))
    assert sorted(a.meter_id for a in alarms(hub.engine)) == sorted(  # type: ignore[type-var]
        [hub.ids["meter_a"], hub.ids["meter_b"], hub.ids["water_b"]]
    ), "the seeded site has dozens of meters, three of which ever sent a reading"


def test_an_offline_edge_raises_and_its_online_status_clears(hub: Hub) -> None:
    add_rule(hub, RuleKind.EDGE_OFFLINE, "edge-down", params={"after_s": 60})
    add_rule(hub, RuleKind.EDGE_OFFLINE, "y-edge-down", site="site_y")
    down_at = T0 + timedelta(hours=1)
    with session_factory(hub.engine).begin() as session:
        session.execute(update(EdgeStateRow).where(EdgeStateRow.edge == "demo-edge")
                        .values(online=False, status_at=down_at))  # fmt: skip
    run(hub, down_at + timedelta(seconds=30))
    assert [a.edge for a in alarms(hub.engine)] == ["y-edge"], "the demo edge has been down 30 s of the 60"
    run(hub, down_at + timedelta(seconds=61))
    y_edge, demo_edge = alarms(hub.engine)
    assert demo_edge.edge == "demo-edge" and demo_edge.raised_at == down_at and demo_edge.site_id == hub.ids["site_x"]
    with session_factory(hub.engine).begin() as session:
        session.execute(update(EdgeStateRow).where(EdgeStateRow.edge == "demo-edge")
                        .values(online=True, status_at=down_at + timedelta(minutes=3)))  # fmt: skip
    run(hub, down_at + timedelta(minutes=4))
    assert [a.state for a in alarms(hub.engine)] == [AlarmState.ACTIVE, AlarmState.CLEARED]


def night_readings(night_of: datetime, per_quarter: list[float], start_value: float) -> list[tuple[datetime, float]]:
    """Water meter readings every 15 minutes from 00:00 to 05:00 local, using ``per_quarter`` m³ each."""
    start = night_of.replace(hour=0, tzinfo=SHANGHAI).astimezone(UTC)
    values, total = [], start_value
    for used in [0.0, *per_quarter]:
        total += used
        values.append(total)
    return every(start, timedelta(minutes=15), values)


def test_water_flowing_every_night_hour_is_a_leak_and_a_quiet_night_clears_it(hub: Hub) -> None:
    add_rule(hub, RuleKind.LEAK, "night-leak", params={"floor": 0.1})
    night = datetime(2026, 4, 10)
    samples(hub.engine, WATER_B, night_readings(night, [0.05] * 20, 500.0))  # 0.2 m³ every hour
    run(hub, night.replace(hour=4, tzinfo=SHANGHAI))
    assert alarms(hub.engine) == [], "the night is not over at 04:00"
    run(hub, night.replace(hour=6, tzinfo=SHANGHAI))
    (alarm,) = alarms(hub.engine)
    assert alarm.kind is RuleKind.LEAK and alarm.meter_id == hub.ids["water_b"] and alarm.value == pytest.approx(0.2)
    assert alarm.raised_at == night.replace(hour=5, tzinfo=SHANGHAI) and alarm.data["period"] == "2026-04-10"
    run(hub, night.replace(hour=18, tzinfo=SHANGHAI))
    assert len(alarms(hub.engine)) == 1

    next_night = night + timedelta(days=1)
    quiet_hour = [0.05] * 8 + [0.0] * 4 + [0.05] * 8  # nothing used from 03:00 to 04:00: the tap was just left on
    samples(hub.engine, WATER_B, night_readings(next_night, quiet_hour, 510.0))
    run(hub, next_night.replace(hour=6, tzinfo=SHANGHAI))
    (alarm,) = alarms(hub.engine)
    assert alarm.state is AlarmState.CLEARED


def test_a_leak_cleared_by_hand_is_not_raised_again_for_the_same_night(hub: Hub) -> None:
    add_rule(hub, RuleKind.LEAK, "night-leak", params={"floor": 0.1})
    night = datetime(2026, 4, 10)
    samples(hub.engine, WATER_B, night_readings(night, [0.05] * 20, 500.0))
    run(hub, night.replace(hour=6, tzinfo=SHANGHAI))
    (alarm,) = alarms(hub.engine)
    hub.client.post(f"/api/v1/alarms/{alarm.id}/clear", headers=hub.headers("engineer_x"))
    run(hub, night.replace(hour=7, tzinfo=SHANGHAI))
    assert len(alarms(hub.engine)) == 1


def daily_readings(first_day: datetime, per_day: list[float], total: float = 1000.0) -> list[tuple[datetime, float]]:
    """Two readings a day, at 00:00 and 23:00 local: the day's use lies between them."""
    out = []
    for n, used in enumerate(per_day):
        day = (first_day + timedelta(days=n)).replace(tzinfo=SHANGHAI)
        out += [(day.astimezone(UTC), total), ((day + timedelta(hours=23)).astimezone(UTC), total + used)]
        total += used
    return out


def test_a_day_above_k_times_the_meters_own_median_is_abnormal(hub: Hub) -> None:
    add_rule(hub, RuleKind.ABNORMAL_CONSUMPTION, "spike", meter_id=hub.ids["meter_b"],
             params={"factor": 3, "days": 14, "min_daily": 5})  # fmt: skip
    first = datetime(2026, 5, 1)
    normal = [10.0, 12.0, 9.0, 11.0, 10.0, 13.0, 8.0, 10.0, 11.0, 10.0, 9.0, 12.0, 10.0, 11.0]
    samples(hub.engine, ELEC_B, daily_readings(first - timedelta(days=1), [10.0, *normal, 31.0]))
    day_after = first + timedelta(days=15)
    run(hub, day_after.replace(hour=8, tzinfo=SHANGHAI))
    (alarm,) = alarms(hub.engine)
    assert alarm.kind is RuleKind.ABNORMAL_CONSUMPTION and alarm.value == 31.0
    assert alarm.data["period"] == "2026-05-15" and alarm.data["median"] == 10.0

    samples(hub.engine, ELEC_B, daily_readings(day_after, [10.0], 1000.0 + 10 + sum(normal) + 31))
    run(hub, (day_after + timedelta(days=1)).replace(hour=8, tzinfo=SHANGHAI))
    assert transitions(hub.engine, alarm.id)[-1] == ("cleared", "cleared")


def test_a_day_under_k_times_the_median_is_normal(hub: Hub) -> None:
    add_rule(hub, RuleKind.ABNORMAL_CONSUMPTION, "spike", meter_id=hub.ids["meter_b"], params={"factor": 3})
    first = datetime(2026, 5, 1)
    samples(hub.engine, ELEC_B, daily_readings(first - timedelta(days=1), [10.0] * 15 + [29.0]))
    run(hub, (first + timedelta(days=15)).replace(hour=8, tzinfo=SHANGHAI))
    assert alarms(hub.engine) == []
