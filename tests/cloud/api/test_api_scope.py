"""Scope, on every route: owner A reaches nothing of owner B's unit, staff of site X nothing of site Y.

The routes are not listed here: they are read from the app. Each one is called as the attacker, aimed at
the victim's objects (every path parameter, and every query filter naming a site, unit, meter, ...), with a
valid body so that a 404 cannot hide a 422. A route whose object belongs to the victim must answer 403 or
404; any answer must not contain the victim's data (unit codes, owner names and phones, meter codes, ...);
the attacker's calls must change nothing (the audit log stays the same). Then every call is replayed as an
admin with every site and must succeed, so each refusal above was the scope at work and not a bad request.

A new route whose path parameter, required query parameter or body is unknown here fails the sweep until
a victim object or a sample is added below; a route can only be skipped by listing it in EXEMPT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

from cloud.api.deps import API_PREFIX, CurrentUser, SessionDep
from cloud.audit.models import AuditEntry
from cloud.ingest.models import DeadLetter
from cloud.registry.models import Unit
from tests.cloud.api.hub_app import Hub

EXEMPT = {
    ("POST", f"{API_PREFIX}/auth/login"): "sign-in: takes a password, names no object",
    ("POST", f"{API_PREFIX}/owner-binding/start"): "public by design: the answer is the same for every number",
    ("POST", f"{API_PREFIX}/owner-binding/verify"): "public by design: binds the caller's own phone number",
    ("GET", f"{API_PREFIX}/auth/me"): "the caller's own account, nothing else",
    ("GET", "/health"): "public: no data",
}
DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
SAMPLE_QUERY = {"start": "2026-03-01T00:00:00+08:00", "end": "2026-03-03T00:00:00+08:00", "point": "outlet_pressure"}


@dataclass(frozen=True)
class Scenario:
    attacker: str
    targets: dict[str, int]
    """Victim object id per path or query parameter name."""
    shared: frozenset[str]
    """Parameters whose object the attacker may see too (a shared site): 200 is fine there, without leaks."""
    markers: tuple[str, ...]
    """The victim's data: must not appear in any answer to the attacker."""
    site_code: str
    building_code: str


def sample_body(model: str, s: Scenario) -> Any:
    samples: dict[str, Any] = {
        "SiteRow": {"code": "probe-site", "name": "探测小区"},
        "SiteUpdate": {"name": "探测改名"},
        "BuildingRow": {"code": "PROBE-B", "name": "探测楼"},
        "BuildingUpdate": {"name": "探测改名"},
        "UnitRow": {"code": "PROBE-0101", "building": s.building_code, "floor": 1, "floor_area_m2": "80.00"},
        "UnitUpdate": {"household_size": 4},
        "MeterRow": {"code": "PROBE-M", "kind": "electricity", "role": "master"},
        "MeterUpdate": {"serves": []},
        "EquipmentRow": {"code": "PROBE-E", "name": "探测泵", "type": "pump"},
        "EquipmentUpdate": {"name": "探测改名"},
        "EdgeRow": {"code": "probe-edge"},
        "UserCreate": {"username": "probe-user", "role": "guard", "password": "probe-password", "sites": [s.site_code]},
        "UserUpdate": {"full_name": "探测"},
    }
    if model not in samples:
        raise KeyError(model)
    return samples[model]


def import_upload(s: Scenario) -> dict[str, Any]:
    doc = {"sites": [{"code": s.site_code, "name": "探测", "buildings": [{"code": s.building_code, "name": "探测楼"}]}]}
    return {"files": {"file": ("probe.yaml", yaml.safe_dump(doc, allow_unicode=True))}, "data": {"dry_run": "true"}}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    url: str
    exclusive: bool
    """Aimed at an object of the victim's alone: only 403 or 404 will do."""
    kwargs: dict[str, Any]

    def send(self, hub: Hub, user: str) -> Any:
        return hub.client.request(self.method, self.url, headers=hub.headers(user), **self.kwargs)


def fields(dependant: Dependant, kind: str) -> list[Any]:
    """The route's parameters of one kind, its dependencies' included, each once."""
    found = {f.alias: f for f in getattr(dependant, kind)}
    for sub in dependant.dependencies:
        found |= {f.alias: f for f in fields(sub, kind) if f.alias not in found}
    return list(found.values())


def plan(hub: Hub, s: Scenario) -> tuple[list[Call], list[str]]:
    """A call per route and method, aimed at the victim; and what could not be aimed (uncovered routes)."""
    calls, problems = [], []
    for route in iter_route_contexts(hub.app.routes):  # app.routes alone holds included routers unexpanded
        if not isinstance(route.original_route, APIRoute):
            if route.path not in DOC_ROUTES:
                problems.append(f"{route.path}: not an API route nor a known documentation route")
            continue
        for method in sorted(route.methods or ()):
            if (method, route.path) in EXEMPT:
                continue
            where = f"{method} {route.path}"
            url, unknown = str(route.path), []
            for name in route.param_convertors:
                if name in s.targets:
                    url = url.replace("{" + name + "}", str(s.targets[name]))
                else:
                    unknown.append(name)
            query: dict[str, int | str] = {}
            for field in fields(route.dependant, "query_params"):
                if field.alias in s.targets:  # filters too are aimed at the victim
                    query[field.alias] = s.targets[field.alias]
                elif field.field_info.is_required():
                    if field.alias in SAMPLE_QUERY:
                        query[field.alias] = SAMPLE_QUERY[field.alias]
                    else:
                        problems.append(f"{where}: no sample for required query parameter {field.alias}")
            if unknown:
                problems.append(f"{where}: no victim object for path parameter {', '.join(unknown)}")
                continue
            kwargs: dict[str, Any] = {"params": query}
            bodies = fields(route.dependant, "body_params")
            if any(isinstance(b.field_info, params.Form | params.File) for b in bodies):
                if (method, route.path) != ("POST", f"{API_PREFIX}/registry/import"):
                    problems.append(f"{where}: no sample for its form fields")
                    continue
                kwargs |= import_upload(s)
            elif bodies:
                model = getattr(bodies[0].field_info.annotation, "__name__", str(bodies[0].field_info.annotation))
                try:
                    kwargs["json"] = sample_body(model, s)
                except KeyError:
                    problems.append(f"{where}: no sample body for {model}")
                    continue
            exclusive = any(name not in s.shared for name in route.param_convertors)
            calls.append(Call(method, str(route.path), url, exclusive, kwargs))
    return calls, problems


def sweep(hub: Hub, s: Scenario) -> list[str]:
    """Every failure of the scope on every route (empty: the scope holds)."""
    calls, failures = plan(hub, s)
    with hub.session() as session:
        audit_before = session.scalar(select(func.count()).select_from(AuditEntry))
    for call in calls:
        r = call.send(hub, s.attacker)
        answer = r.text + json.dumps(r.json() if r.content else None, ensure_ascii=False)
        allowed = {403, 404} if call.exclusive else {200, 201, 403, 404}
        if r.status_code not in allowed:
            failures.append(f"{call.method} {call.path} as {s.attacker}: {r.status_code} {r.text[:200]}")
        leaked = [m for m in s.markers if m in answer]
        if leaked:
            failures.append(f"{call.method} {call.path} as {s.attacker}: answer shows {', '.join(leaked)}")
    with hub.session() as session:
        if session.scalar(select(func.count()).select_from(AuditEntry)) != audit_before:
            failures.append(f"{s.attacker}'s calls changed the registry or users (new audit entries)")
    for call in calls:
        r = call.send(hub, "admin")
        if r.status_code >= 300:
            failures.append(f"{call.method} {call.path} as admin (control): {r.status_code} {r.text[:200]}")
    return failures


def owner_scenario(hub: Hub) -> Scenario:
    ids = hub.ids
    with hub.session() as session:
        unit_b = session.get_one(Unit, ids["unit_b"])
        dead_letter = session.scalars(select(DeadLetter.id).where(DeadLetter.site == "demo-site")).one()
        markers = (unit_b.code, unit_b.owner_name or "", unit_b.owner_phone or "", "EM-B2-U01", "WM-B2-U01",
                   "b2-u01-elec", "2号楼")  # fmt: skip
    return Scenario(
        attacker="owner_a",
        targets={"site_id": ids["site_x"], "building_id": ids["building_b"], "unit_id": ids["unit_b"],
                 "meter_id": ids["meter_b"], "series_id": ids["series_b"], "equipment_id": ids["equipment_x"],
                 "edge_id": ids["edge_x"], "user_id": hub.users["owner_b"].id, "dead_letter_id": dead_letter},
        shared=frozenset({"site_id"}),  # A and B live in the same estate
        markers=markers, site_code="demo-site", building_code="B2",
    )  # fmt: skip


def staff_scenario(hub: Hub, attacker: str) -> Scenario:
    ids = hub.ids
    with hub.session() as session:
        dead_letter = session.scalars(select(DeadLetter.id).where(DeadLetter.site == "other-site")).one()
    return Scenario(
        attacker=attacker,
        targets={"site_id": ids["site_y"], "building_id": ids["building_y"], "unit_id": ids["unit_y"],
                 "meter_id": ids["meter_y"], "series_id": ids["series_y"], "equipment_id": ids["equipment_y"],
                 "edge_id": ids["edge_y"], "user_id": hub.users["engineer_y"].id, "dead_letter_id": dead_letter},
        shared=frozenset(),
        markers=("other-site", "别的小区", "Y-0101", "赵六", "13912345678", "EM-Y-0101", "Y-PUMP", "y-edge",
                 "y-0101-elec", "other-site secret"),
        site_code="other-site", building_code="YB1",
    )  # fmt: skip


def test_owner_a_reaches_nothing_of_owner_bs_unit(hub: Hub) -> None:
    assert sweep(hub, owner_scenario(hub)) == []


@pytest.mark.parametrize("attacker", ["admin_x", "engineer_x", "finance_x", "guard_x"])
def test_staff_of_site_x_reach_nothing_of_site_y(hub: Hub, attacker: str) -> None:
    assert sweep(hub, staff_scenario(hub, attacker)) == []


def test_the_sweep_catches_a_leaky_route_and_refuses_uncovered_ones(hub: Hub) -> None:
    @hub.app.get(f"{API_PREFIX}/units/{{unit_id}}/leak")
    def leak(unit_id: int, session: SessionDep, user: CurrentUser) -> dict[str, str | None]:
        unit = session.get_one(Unit, unit_id)  # no scope: the bug this test exists for
        return {"owner": unit.owner_name}

    @hub.app.get(f"{API_PREFIX}/widgets/{{widget_id}}")
    def widget(widget_id: int, user: CurrentUser) -> dict[str, int]:
        return {"id": widget_id}

    @hub.app.post(f"{API_PREFIX}/gadgets")
    def gadget(body: dict[str, int], user: CurrentUser) -> dict[str, int]:
        return body

    failures = sweep(hub, owner_scenario(hub))
    assert any(f.startswith(f"GET {API_PREFIX}/units/{{unit_id}}/leak as owner_a: 200") for f in failures)
    assert any(f.startswith(f"GET {API_PREFIX}/units/{{unit_id}}/leak as owner_a: answer shows") for f in failures)
    assert f"GET {API_PREFIX}/widgets/{{widget_id}}: no victim object for path parameter widget_id" in failures
    assert any(f.startswith(f"POST {API_PREFIX}/gadgets: no sample body for") for f in failures), failures


def test_the_walk_sees_every_documented_route_and_exemptions_are_real(hub: Hub) -> None:
    """Guards the guard: if FastAPI changes how routes are stored again, the sweep must not go vacuous."""
    documented = {(m.upper(), path) for path, ops in hub.app.openapi()["paths"].items() for m in ops}
    calls, _ = plan(hub, owner_scenario(hub))
    swept = {(c.method, c.path) for c in calls}
    assert documented == swept | set(EXEMPT)
    assert len(swept) >= 40


def test_every_route_but_the_exempt_needs_a_token(hub: Hub) -> None:
    """Without a token every covered route answers 401 (public ones are exactly EXEMPT minus /auth/me)."""
    calls, problems = plan(hub, owner_scenario(hub))
    assert problems == []
    refused = {(c.method, c.path): hub.client.request(c.method, c.url, **c.kwargs).status_code for c in calls}
    assert {k: v for k, v in refused.items() if v != 401} == {}
    assert hub.client.get(f"{API_PREFIX}/auth/me").status_code == 401


def test_owner_sees_their_own_unit_meters_and_readings(hub: Hub) -> None:
    a = hub.ids
    own = hub.get("owner_a", f"{API_PREFIX}/units").json()
    assert [u["code"] for u in own] == ["1-0101"]
    meters = hub.get("owner_a", f"{API_PREFIX}/units/{a['unit_a']}/meters").json()
    assert sorted(m["code"] for m in meters) == ["EM-B1-U01", "WM-B1-U01"]  # not the building's common meter
    span = {"start": "2026-03-01T00:00:00+00:00", "end": "2026-03-02T00:00:00+00:00"}
    usage = hub.get("owner_a", f"{API_PREFIX}/units/{a['unit_a']}/consumption", params=span).json()
    assert [(u["code"], u["value"], u["estimated"]) for u in usage] == [("EM-B1-U01", 36.0, False),
                                                                        ("WM-B1-U01", 0.0, True)]  # fmt: skip
    buildings = hub.get("owner_a", f"{API_PREFIX}/sites/{a['site_x']}/buildings").json()
    assert [b["code"] for b in buildings] == ["B1"]
