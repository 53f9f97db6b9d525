"""Monthly stats against a month computed by hand.

March 2026, route 1号楼夜巡 (A, B, C; on time A 0-5, B 4-10, C 9-15 min into the round; late for 5 more):
guard1, 09:00 rounds on 2-5 March:
  2nd: A 2, B 7, C 12            -> 3 on time                     (complete)
  3rd: A 8, C 12, B never        -> A late 3 min, C on time, B missed
  4th: nothing                   -> 3 missed
  5th: A 2, B 13, C 19           -> A on time, B late 3 min, C late 4 min   (complete)
  due 12, visited 8, missed 4: 完成率 66.7 %, 漏巡率 33.3 %; late 3, average (3+3+4)/3 = 3.3 min
guard2, 14:00 rounds on 2-3 March:
  2nd: all on time (complete); 3rd: A, B on time, C missed
  due 6, visited 5, missed 1: 83.3 % and 16.7 %
A round on 1 April (09:00 Shanghai) is in April, and is left out.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

from cloud.auth.models import User
from cloud.patrol.models import PatrolPlan
from cloud.patrol.monitor import sweep
from cloud.patrol.plans import generate
from cloud.patrol.scans import accept_offline_scan
from cloud.patrol.stats import monthly_stats, to_csv
from tests.cloud.patrol.conftest import ROUND_START, World, make_plan

SCANS = {  # (guard, day of March, round start hour UTC): {checkpoint: minutes into the round}
    ("guard", 2, 1): {"A": 2, "B": 7, "C": 12},
    ("guard", 3, 1): {"A": 8, "C": 12},
    ("guard", 5, 1): {"A": 2, "B": 13, "C": 19},
    ("other_guard", 2, 6): {"A": 2, "B": 7, "C": 12},
    ("other_guard", 3, 6): {"A": 2, "B": 7},
}


def test_monthly_stats_match_the_hand_computed_month(world: World) -> None:
    with world.sessions.begin() as session:
        plan = session.get_one(PatrolPlan, world.plan_id)
        generate(session, plan, date(2026, 3, 3), date(2026, 3, 5), ROUND_START)
        generate(session, plan, date(2026, 4, 1), date(2026, 4, 1), ROUND_START)
        afternoon = make_plan(session, world.site_x, world.route_id, [world.other_guard.id], name="午班巡更",
                              shift_start=time(14), shift_end=time(15))  # fmt: skip
        generate(session, afternoon, date(2026, 3, 2), date(2026, 3, 3), ROUND_START)
    ref = 0
    for (who, day, hour), scans in SCANS.items():
        start = ROUND_START.replace(day=day, hour=hour)
        for name, minutes in scans.items():
            ref += 1
            with world.sessions.begin() as session:
                user = session.get_one(User, getattr(world, who).id)
                accept_offline_scan(session, user=user, site_id=world.site_x, code=world.code(name),
                                    scanned_at=start + timedelta(minutes=minutes), client_ref=f"s{ref}",
                                    now=start + timedelta(minutes=minutes))  # fmt: skip
    with world.sessions.begin() as session:
        sweep(session, ROUND_START.replace(month=4, day=2))
        rows = monthly_stats(session, world.site_x, date(2026, 3, 1))

    got = {(r.guard, r.route): r for r in rows}
    assert set(got) == {("guard1", "1号楼夜巡"), ("guard2", "1号楼夜巡")}
    g1, g2 = got["guard1", "1号楼夜巡"], got["guard2", "1号楼夜巡"]
    assert (g1.rounds, g1.complete_rounds, g1.due, g1.visited, g1.missed) == (4, 2, 12, 8, 4)
    assert (g1.on_time, g1.late, g1.early, g1.out_of_order) == (5, 3, 0, 0)
    assert (g1.completion_rate, g1.miss_rate, g1.avg_late_min) == (Decimal("66.7"), Decimal("33.3"), Decimal("3.3"))
    assert (g2.rounds, g2.complete_rounds, g2.due, g2.visited, g2.missed) == (2, 1, 6, 5, 1)
    assert (g2.completion_rate, g2.miss_rate, g2.avg_late_min) == (Decimal("83.3"), Decimal("16.7"), Decimal("0.0"))

    csv_zh = to_csv(rows, "zh-CN").lstrip("\ufeff").splitlines()
    assert csv_zh[0].startswith("巡更员,路线,任务数") and "完成率(%)" in csv_zh[0] and "漏巡率(%)" in csv_zh[0]
    assert csv_zh[1] == "guard1,1号楼夜巡,4,2,12,8,4,66.7,33.3,5,0,3,0,3.3"
    assert to_csv(rows, "en").splitlines()[0].startswith("\ufeffGuard,Route,Rounds")
