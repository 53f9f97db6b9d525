"""The alarm API: rules checked with clear messages before anything is stored; alarms listed, acknowledged and
cleared by the right people of the right site only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from cloud.alarms.evaluator import Evaluator
from cloud.alarms.models import AlarmRule
from cloud.db import session_factory
from tests.cloud.alarms.helpers import alarms, event, transitions
from tests.cloud.api.hub_app import Hub

T = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
RULES = "/api/v1/alarm-rules"


def threshold(hub: Hub, **changes: Any) -> dict[str, Any]:
    return {"site_id": hub.ids["site_x"], "name": "pump-low", "kind": "threshold", "severity": "critical",
            "equipment_id": hub.ids["equipment_x"], "point": "outlet_pressure",
            "params": {"below": 200, "hysteresis": 20, "raise_after_s": 30}} | changes  # fmt: skip


def rule_count(hub: Hub) -> int:
    with session_factory(hub.engine)() as session:
        return session.scalar(select(func.count()).select_from(AlarmRule)) or 0


def test_an_engineer_creates_changes_and_disables_a_rule(hub: Hub) -> None:
    created = hub.client.post(RULES, json=threshold(hub), headers=hub.headers("engineer_x"))
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["params"] == {"below": 200, "hysteresis": 20, "raise_after_s": 30} and rule["enabled"] is True
    changed = hub.client.patch(f"{RULES}/{rule['id']}", json={"params": {"below": 180}, "enabled": False},
                               headers=hub.headers("engineer_x"))  # fmt: skip
    assert changed.status_code == 200 and changed.json()["params"] == {"below": 180}
    listed = hub.get("engineer_x", RULES).json()
    assert [(r["name"], r["enabled"]) for r in listed] == [("pump-low", False)]
    assert hub.client.delete(f"{RULES}/{rule['id']}", headers=hub.headers("engineer_x")).status_code == 204
    assert rule_count(hub) == 0


def test_bad_rules_are_refused_with_what_to_fix_and_nothing_is_stored(hub: Hub) -> None:
    cases = [
        (threshold(hub, params={"below": 200, "above": 300}), "params: set exactly one of 'above' or 'below'"),
        (threshold(hub, params={"below": 200, "hysteresis": -1}), "params.hysteresis: Input should be greater than"),
        (threshold(hub, params={"below": 200, "delay": 5}), "params.delay: not a parameter of threshold rules"),
        (threshold(hub, point=None), "point: a threshold rule needs the point it watches"),
        (threshold(hub, meter_id=hub.ids["meter_b"]), "target: a threshold rule watches exactly one of"),
        (threshold(hub, kind="leak", params={"floor": 0.1}), "target: a leak rule watches meters"),
        (threshold(hub, kind="leak", equipment_id=None, point=None, params={}), "params.floor: Field required"),
        (threshold(hub, kind="edge_alarm"), "kind: edge alarms pass through"),
        (threshold(hub, equipment_id=hub.ids["equipment_y"]), "equipment 4 not found"),
    ]
    for body, expected in cases:
        response = hub.client.post(RULES, json=body, headers=hub.headers("engineer_x"))
        assert response.status_code in (404, 422), response.text
        detail = response.json()["detail"]
        text = " ".join(detail) if isinstance(detail, list) else str(detail)
        assert expected.replace("equipment 4", f"equipment {hub.ids['equipment_y']}") in text, (expected, text)
    assert rule_count(hub) == 0


def test_a_duplicate_rule_name_in_a_site_is_a_conflict(hub: Hub) -> None:
    assert hub.client.post(RULES, json=threshold(hub), headers=hub.headers("engineer_x")).status_code == 201
    again = hub.client.post(RULES, json=threshold(hub), headers=hub.headers("engineer_x"))
    assert again.status_code == 409 and "pick another name" in again.json()["detail"]


def test_only_engineers_and_admins_of_the_site_manage_rules(hub: Hub) -> None:
    for user, status in (("guard_x", 403), ("finance_x", 403), ("owner_a", 403), ("engineer_y", 404),
                         ("admin_x", 201)):  # fmt: skip
        response = hub.client.post(RULES, json=threshold(hub, name=user), headers=hub.headers(user))
        assert response.status_code == status, (user, response.text)
    rule_id = hub.get("admin_x", RULES).json()[0]["id"]
    assert hub.get("engineer_y", f"{RULES}/{rule_id}").status_code == 404


def raise_edge_alarm(hub: Hub) -> int:
    event(hub.engine, "alarm_raised", T, message="low pressure", rule="low", severity="warning", value=150.0)
    Evaluator(hub.engine).run_once(T + timedelta(seconds=1))
    return alarms(hub.engine)[0].id


def test_staff_of_the_site_list_and_acknowledge_alarms_once(hub: Hub) -> None:
    alarm_id = raise_edge_alarm(hub)
    listed = hub.get("guard_x", "/api/v1/alarms", params={"state": ["active", "acknowledged"]}).json()
    assert [a["id"] for a in listed] == [alarm_id] and listed[0]["title"].startswith("现场告警")
    acked = hub.client.post(f"/api/v1/alarms/{alarm_id}/ack", json={"note": "on my way"},
                            headers=hub.headers("guard_x"))  # fmt: skip
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == hub.users["guard_x"].id
    again = hub.client.post(f"/api/v1/alarms/{alarm_id}/ack", headers=hub.headers("engineer_x"))
    assert again.status_code == 409 and "only an active alarm can be acknowledged" in again.json()["detail"]
    detail = hub.get("engineer_x", f"/api/v1/alarms/{alarm_id}").json()
    assert [(t["reason"], t["to_state"], t["message"]) for t in detail["transitions"]] == [
        ("raised", "active", "low pressure"), ("acknowledged", "acknowledged", "on my way")]  # fmt: skip
    assert hub.get("engineer_x", "/api/v1/alarms", params={"state": "active"}).json() == []


def test_other_sites_and_owners_never_see_an_alarm(hub: Hub) -> None:
    alarm_id = raise_edge_alarm(hub)
    assert hub.get("engineer_y", "/api/v1/alarms").json() == []
    assert hub.get("engineer_y", f"/api/v1/alarms/{alarm_id}").status_code == 404
    ack = hub.client.post(f"/api/v1/alarms/{alarm_id}/ack", headers=hub.headers("engineer_y"))
    assert ack.status_code == 404
    assert hub.get("owner_a", "/api/v1/alarms").status_code == 403
    assert hub.client.post(f"/api/v1/alarms/{alarm_id}/clear", headers=hub.headers("guard_x")).status_code == 403
    assert transitions(hub.engine, alarm_id) == [("raised", "active")]


def test_a_new_alarm_notifies_the_sites_engineers_and_admins(hub: Hub) -> None:
    raise_edge_alarm(hub)
    for user, expected in (("engineer_x", 1), ("admin", 1), ("admin_x", 1), ("engineer_y", 0), ("guard_x", 0)):
        mine = [n for n in hub.get(user, "/api/v1/notifications").json() if n["kind"] == "alarm.raised"]
        assert len(mine) == expected, user
    note = next(n for n in hub.get("engineer_x", "/api/v1/notifications").json() if n["kind"] == "alarm.raised")
    assert note["title"].startswith("【警告】现场告警") and note["data"]["alarm_id"] is not None
