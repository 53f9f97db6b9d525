"""Maintenance through the API and the pages: an engineer sets the pump's standard and a plan; the planner makes
the task; the responsible technician does it on the mobile page, a low pressure opens a ticket, and the
equipment history shows the alarm, the ticket and the maintenance together. Others cannot reach the task."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cloud.alarms.models import Alarm, AlarmState, RuleKind, Severity
from cloud.db import session_factory
from cloud.maintenance.planner import local_date, run_planner
from tests.cloud.api.hub_app import Hub
from tests.cloud.ticket_pages.conftest import PNG, desk, hub, signed_in

__all__ = ["desk", "hub"]

STANDARD = {
    "code": "pump", "name": "生活水泵", "period_unit": "month", "period_count": 1,
    "items": [
        {"name": "出口压力", "kind": "reading", "unit": "kPa", "min_value": "250", "max_value": "450"},
        {"name": "机械密封无渗漏", "kind": "check"},
    ],
}  # fmt: skip


def plan_pump(hub: Hub) -> int:
    """Standard and plan through the API, then one planner pass: the id of the task it generated."""
    engineer = hub.headers("engineer_x")
    created = hub.client.post("/api/v1/maintenance/types", json={"site_id": hub.ids["site_x"], **STANDARD},
                              headers=engineer)  # fmt: skip
    assert created.status_code == 201, created.text
    today = local_date(datetime.now(UTC))
    plan = hub.client.post("/api/v1/maintenance/plans", headers=engineer, json={
        "equipment_id": hub.ids["equipment_x"], "name": "水泵月度保养", "responsible_id": hub.users["plumber"].id,
        "starts_on": today.isoformat(), "lead_days": 3,
    })  # fmt: skip
    assert plan.status_code == 201, plan.text
    assert (plan.json()["period_unit"], plan.json()["period_count"]) == ("month", 1), "the standard's period"
    with session_factory(hub.engine).begin() as session:
        run_planner(session, datetime.now(UTC))
    tasks = hub.client.get("/api/v1/maintenance/tasks", headers=hub.headers("plumber")).json()
    assert [t["due_on"] for t in tasks] == [today.isoformat()]
    return int(tasks[0]["id"])


def test_standards_and_plans_are_checked_and_scoped(desk: Hub) -> None:
    engineer = desk.headers("engineer_x")
    bad = dict(STANDARD, items=[{"name": "皮带", "kind": "check", "min_value": "1"}])
    refused = desk.client.post("/api/v1/maintenance/types", json={"site_id": desk.ids["site_x"], **bad},
                               headers=engineer)  # fmt: skip
    assert refused.status_code == 422 and "give a range only to readings" in refused.text
    no_standard = desk.client.post("/api/v1/maintenance/plans", headers=engineer, json={
        "equipment_id": desk.ids["equipment_x"], "name": "保养", "responsible_id": desk.users["plumber"].id,
        "starts_on": "2026-03-01",
    })  # fmt: skip
    assert no_standard.status_code == 422 and "no maintenance standard for equipment type 'pump'" in no_standard.text
    plan_pump(desk)
    twice = desk.client.post("/api/v1/maintenance/types", json={"site_id": desk.ids["site_x"], **STANDARD},
                             headers=engineer)  # fmt: skip
    assert twice.status_code == 409
    foreign = desk.client.post("/api/v1/maintenance/plans", headers=engineer, json={
        "equipment_id": desk.ids["equipment_y"], "name": "保养", "responsible_id": desk.users["plumber"].id,
        "starts_on": "2026-03-01",
    })  # fmt: skip
    assert foreign.status_code == 404
    assert desk.get("owner_a", "/api/v1/maintenance/tasks").status_code == 403
    assert desk.get("engineer_y", "/api/v1/maintenance/plans").json() == [], "another site's staff"


def test_the_technician_does_the_task_and_a_low_pressure_opens_a_ticket(desk: Hub) -> None:
    task_id = plan_pump(desk)
    assert desk.get("electrician", f"/api/v1/maintenance/tasks/{task_id}").status_code == 404
    plumber = signed_in(desk, "plumber")
    assert f"/console/maintenance/tasks/{task_id}" in plumber.get("/console/tech").text
    form = plumber.get(f"/console/maintenance/tasks/{task_id}")
    assert form.status_code == 200 and "出口压力" in form.text
    ids = [int(i) for i in re.findall(r'name="(?:reading|check)_(\d+)"', form.text)]
    pressure, seal = sorted(set(ids))
    assert signed_in(desk, "electrician").get(f"/console/maintenance/tasks/{task_id}").status_code == 404

    photo = plumber.post(f"/console/maintenance/tasks/{task_id}/photo", files={"photo": ("gauge.png", PNG, "image/png")},
                         follow_redirects=False)  # fmt: skip
    assert photo.status_code == 303
    not_photo = plumber.post(f"/console/maintenance/tasks/{task_id}/photo",
                             files={"photo": ("gauge.png", b"GIF89a", "image/png")})  # fmt: skip
    assert not_photo.status_code == 415 and "only JPEG, PNG or WebP" in not_photo.text
    assert plumber.get(f"/console/maintenance/tasks/{task_id}/photos/0").content == PNG
    assert plumber.get(f"/console/maintenance/tasks/{task_id}/photos/1").status_code == 404
    assert signed_in(desk, "electrician").get(f"/console/maintenance/tasks/{task_id}/photos/0").status_code == 404
    api_photo = desk.client.post(f"/api/v1/maintenance/tasks/{task_id}/photos", headers=desk.headers("plumber"),
                                 files={"photo": ("belt.png", PNG, "image/png")})  # fmt: skip
    assert api_photo.status_code == 201 and api_photo.json()["photos"] == 2
    typo = plumber.post(f"/console/maintenance/tasks/{task_id}", data={f"reading_{pressure}": "2x0",
                                                                      f"check_{seal}": "pass"})  # fmt: skip
    assert typo.status_code == 422 and "&#39;2x0&#39; is not a number" in typo.text
    done = plumber.post(
        f"/console/maintenance/tasks/{task_id}",
        data={f"reading_{pressure}": "180", f"check_{seal}": "pass", "notes": "压力偏低"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    page = plumber.get(f"/console/maintenance/tasks/{task_id}").text
    assert "不合格" in page and 'data-testid="task-ticket"' in page
    task = desk.get("plumber", f"/api/v1/maintenance/tasks/{task_id}").json()
    assert task["state"] == "failed" and task["ticket_id"] is not None
    assert f"/console/tech/tickets/{task['ticket_id']}" in plumber.get("/console/tech").text, "dispatched to them"

    with session_factory(desk.engine).begin() as session:
        session.add(Alarm(
            site_id=desk.ids["site_x"], source_key="rule:1", asset_key=f"equipment:{desk.ids['equipment_x']}",
            kind=RuleKind.THRESHOLD, severity=Severity.WARNING, state=AlarmState.CLEARED,
            equipment_id=desk.ids["equipment_x"], title="出口压力过低", message="180 kPa < 250 kPa",
            raised_at=datetime.now(UTC) - timedelta(days=1), flaps=0, occurrences=1, data={},
        ))  # fmt: skip
    history = signed_in(desk, "engineer_x").get(f"/console/equipment/{desk.ids['equipment_x']}/history")
    assert history.status_code == 200
    table = re.search(r'data-testid="history">(.*?)</table>', history.text, re.S)
    assert table is not None
    rows = re.findall(r'<tr class="h-(\w+)">', table.group(1))
    assert rows == ["ticket", "maintenance", "alarm"], "newest first, all three kinds together"
    assert "出口压力过低" in table.group(1) and "水泵月度保养" in table.group(1)
    assert signed_in(desk, "engineer_y").get(f"/console/equipment/{desk.ids['equipment_x']}/history").status_code == 404
