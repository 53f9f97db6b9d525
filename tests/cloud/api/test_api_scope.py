"""Scope, on every route: owner A reaches nothing of owner B's unit, staff of site X nothing of site Y.

The routes are not listed here: they are read from the app. Each one is called as the attacker, aimed at
the victim's objects (every path parameter, every query filter naming a site, unit, meter, ..., and every body
field naming one), with a valid body so that a 404 cannot hide a 422. A route whose object belongs to the victim
must answer 403 or 404; any answer must not contain the victim's data (unit codes, owner names and phones,
meter codes, bill numbers, ticket descriptions, checkpoint names, ...); the attacker's calls must change nothing
(no table gains or loses a row, the audit log stays the same). Then every call is replayed by a user of the
victim's side allowed to make it (an admin with every site where admins may; else the victim site's finance
user, guard or the unit's owner) and must succeed, so each refusal above was the scope at work and not a bad
request. The victim objects of billing, payments, alarms, notifications, tickets, maintenance and patrol are
seeded by scope_victims.py.

The notification stream never ends: it is read as a stream, up to its first keep-alive (after the backlog it
replays from ``after=0``), with a time limit.

A new route whose path parameter, required query parameter or body is unknown here fails the sweep until
a victim object or a sample is added below; a route can only be skipped by listing it in EXEMPT.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin
from urllib.parse import urlencode

import anyio
import pytest
import yaml
from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

from cloud.api.deps import API_PREFIX, CurrentUser, SessionDep
from cloud.auth.models import Role
from cloud.billing.demo import SHANGHAI_ELECTRICITY
from cloud.db import Base
from cloud.ingest.models import DeadLetter
from cloud.notify import routes as notify_routes
from cloud.registry.models import Meter, Unit
from tests.cloud.api.hub_app import Hub
from tests.cloud.api.scope_victims import PNG, Victims, ensure_user, seed_victims

EXEMPT = {
    ("POST", f"{API_PREFIX}/auth/login"): "sign-in: takes a password, names no object",
    ("POST", f"{API_PREFIX}/owner-binding/start"): "public by design: the answer is the same for every number",
    ("POST", f"{API_PREFIX}/owner-binding/verify"): "public by design: binds the caller's own phone number",
    ("GET", f"{API_PREFIX}/auth/me"): "the caller's own account, nothing else",
    ("GET", "/health"): "public: no data",
    ("POST", f"{API_PREFIX}/payments/webhook/{{provider}}"): "the payment provider's, signed by it, not a user's: "
    "tests/cloud/payments test its signature, replay and amount checks",
    ("GET", "/pay/demo/{reference}"): "the demo provider's hosted page, outside the API: a payer holds the "
    "intent's unguessable reference (token_urlsafe(18)) as a real provider's checkout link",
    ("POST", "/pay/demo/{reference}/confirm"): "the demo provider's hosted page, as above; it reports to the webhook",
}
DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
SAMPLE_QUERY = {"start": "2026-03-01T00:00:00+08:00", "end": "2026-03-03T00:00:00+08:00", "point": "outlet_pressure",
                "period_from": "2026-03", "period_to": "2026-03", "month": "2026-03"}  # fmt: skip
SAMPLE_PATH = {"fmt": "svg"}
"""Path parameters that name no object."""
SITE_NUMBERED = {"kid"}
"""Path parameters numbered within their site (patrol key 1 of each site): not an object of the victim's alone
under the attacker's own site."""
STREAM = f"{API_PREFIX}/notifications/stream"
SCANS = f"{API_PREFIX}/patrol/scans"
STREAM_LIMIT_S = 10.0
ACTIONS = "ticket actions: the ticket rules (the assigned technician, the reporter, the state) refuse it"
CONTROL_REFUSALS: dict[tuple[str, str], str] = {
    **{("POST", f"{API_PREFIX}/tickets/{{ticket_id}}/{action}"): ACTIONS
       for action in ("accept", "grab", "decline", "arrive", "start", "complete", "follow-up", "close", "reopen",
                      "cancel", "wait-for-owner", "resume", "items", "rating")},
    ("DELETE", f"{API_PREFIX}/alarm-rules/{{rule_id}}"): "the victim's rule raised an alarm: it is disabled, not "
    "deleted",
    ("POST", f"{API_PREFIX}/billing/entries/{{entry_id}}/reject"): "replayed after approve: the entry is decided",
}  # fmt: skip
"""Calls whose replay the domain's own rules may refuse (400, 403, 409, 422) after the scope let the object be
found: never with 404, which would mean the control could not reach it either. They are replayed last, so their
state changes do not stand in the way of the other calls."""
CONTROL_ROLE = {("POST", f"{API_PREFIX}/notifications/{{notification_id}}/read"): Role.OWNER}
"""Calls only one user may make whatever their role: a notification is marked read by its recipient alone."""
ATTACKER_REFUSALS = {
    ("POST", SCANS): (422, "this code belongs to another site"),
    ("POST", f"{SCANS}/offline"): (200, '"scan":null,"rejected":"this code belongs to another site"'),
}
"""Refusals that say the victim's object is out of reach in other words than 403 or 404: a scan's code is checked
against the site of the attacker's own challenge; a batch of offline scans answers each scan's refusal."""


@dataclass(frozen=True)
class Scenario:
    attackers: tuple[str, ...]
    targets: dict[str, int | str]
    """Victim object id per path, query or body parameter name."""
    shared: frozenset[str]
    """Parameters whose object the attacker may see too (a shared site): 200 is fine there, without leaks."""
    markers: tuple[str, ...]
    """The victim's data: must not appear in any answer to the attacker."""
    site_code: str
    building_code: str
    controls: dict[Role, str]
    """Who replays a call an admin may not make: a user of the victim's site, or the unit's owner."""
    overrides: dict[str, dict[str, int | str]]
    """Per route path, targets that differ from ``targets`` (a guard's badge needs a guard)."""


Sample = tuple[Any, tuple[str, ...]]
"""A body and the targets it names (any not shared makes the call exclusive to the victim)."""


def sample_body(model: str, s: Scenario) -> Sample:
    t = s.targets
    shift = {"starts_at": "2026-03-02T00:00:00+00:00", "ends_at": "2026-03-02T08:00:00+00:00"}
    boundary = "2026-03-31T16:00:00+00:00"  # 00:00 Beijing time, where telemetry meters are corrected
    samples: dict[str, Callable[[], Sample]] = {
        "SiteRow": lambda: ({"code": "probe-site", "name": "探测小区"}, ()),
        "SiteUpdate": lambda: ({"name": "探测改名"}, ()),
        "BuildingRow": lambda: ({"code": "PROBE-B", "name": "探测楼"}, ()),
        "BuildingUpdate": lambda: ({"name": "探测改名"}, ()),
        "UnitRow": lambda: ({"code": "PROBE-0101", "building": s.building_code, "floor": 1, "floor_area_m2": "80.00"},
                            ()),
        "UnitUpdate": lambda: ({"household_size": 4}, ()),
        "MeterRow": lambda: ({"code": "PROBE-M", "kind": "electricity", "role": "master"}, ()),
        "MeterUpdate": lambda: ({"serves": []}, ()),
        "EquipmentRow": lambda: ({"code": "PROBE-E", "name": "探测泵", "type": "pump"}, ()),
        "EquipmentUpdate": lambda: ({"name": "探测改名"}, ()),
        "EdgeRow": lambda: ({"code": "probe-edge"}, ()),
        "UserCreate": lambda: ({"username": "probe-user", "role": "guard", "password": "probe-password",
                                "sites": [s.site_code]}, ()),
        "UserUpdate": lambda: ({"full_name": "探测"}, ()),
        # alarms
        "RuleIn": lambda: ({"site_id": t["site_id"], "name": "探测规则", "kind": "threshold",
                            "equipment_id": t["equipment_id"], "point": "outlet_pressure", "params": {"below": 200}},
                           ("site_id", "equipment_id")),
        "RuleUpdate": lambda: ({"name": "探测改名"}, ()),
        "cloud.alarms.schemas.Note": lambda: ({"note": "探测"}, ()),
        # billing and ledger
        "TariffIn": lambda: ({"code": "probe-tariff", "name": "探测电价", "kind": "electricity",
                              "effective_from": "2026-01-01", "document": SHANGHAI_ELECTRICITY}, ()),
        "VersionIn": lambda: ({"effective_from": "2026-06-01", "document": SHANGHAI_ELECTRICITY}, ()),
        "AssignmentIn": lambda: ({"tariff_id": t["tariff_id"]}, ("tariff_id",)),
        "ReadingIn": lambda: ({"read_at": "2026-04-30T16:00:00+00:00", "value": "1600"}, ()),
        "CorrectionIn": lambda: ({"read_at": boundary, "value": "1490", "reason": "探测更正"}, ()),
        "ReplacementIn": lambda: ({"replaced_at": boundary, "old_final": "1500", "new_initial": "0"}, ()),
        "PoolIn": lambda: ({"code": "probe-pool", "name": "探测公摊", "kind": "common", "meter_id": t["spare_meter_id"],
                            "tariff_id": t["tariff_id"], "method": "equal"}, ("spare_meter_id", "tariff_id")),
        "PoolApprovalIn": lambda: ({"period": "2026-03", "quantity": "100"}, ()),
        "RunIn": lambda: ({"period": "2026-02"}, ()),
        "EntryCreate": lambda: ({"kind": "waiver", "amount_fen": 100, "reason": "探测减免"}, ()),
        "Decision": lambda: ({"comment": "探测"}, ()),
        "PolicyIn": lambda: ({"late_fee_daily_rate": "0.0005", "reminder_days_before": 3}, ()),
        "RulesIn": lambda: ({"rules": [{"kind": "waiver", "min_amount_fen": 0, "levels": 1}]}, ()),
        # payments
        "CounterPayment": lambda: ({"unit_id": t["unit_id"], "amount_fen": 100, "method": "cash"}, ("unit_id",)),
        "IntentCreate": lambda: ({"bill_ids": [t["bill_id"]]}, ("bill_id",)),
        # tickets
        "StaffTicketIn": lambda: ({"site_id": t["site_id"], "category": "plumbing", "title": "探测工单",
                                   "unit_id": t["unit_id"]}, ("site_id", "unit_id")),
        "RepairRequestIn": lambda: ({"unit_id": t["unit_id"], "category": "plumbing", "description": "探测报修"},
                                    ("unit_id",)),
        "TechnicianIn": lambda: ({"user_id": t["technician_user_id"], "site_id": t["site_id"],
                                  "skills": ["plumbing"]}, ("technician_user_id", "site_id")),
        "DutyIn": lambda: ({"on_duty": True}, ()),
        "LocationIn": lambda: ({"building_id": t["building_id"]}, ("building_id",)),
        "ShiftIn": lambda: (shift, ()),
        "SiteSettingsIn": lambda: ({"grab_mode": False, "team_lead_id": t["technician_user_id"]},
                                   ("technician_user_id",)),
        "SlaPolicyIn": lambda: ({"site_id": t["site_id"], "priority": "urgent", "response_min": 30,
                                 "resolution_min": 240}, ("site_id",)),
        "AssignIn": lambda: ({"technician_id": t["technician_id"]}, ("technician_id",)),
        "ReasonIn": lambda: ({"reason": "探测原因"}, ()),
        "CompleteIn": lambda: ({"note": "探测"}, ()),
        "NoteIn": lambda: ({"note": "探测"}, ()),
        "CommentIn": lambda: ({"body": "探测评论"}, ()),
        "cloud.tickets.schemas.ItemIn": lambda: ({"kind": "material", "description": "探测材料", "quantity": "1",
                                                  "unit_price_fen": 100}, ()),
        "RatingIn": lambda: ({"speed": 5, "attitude": 5, "quality": 5}, ()),
        # maintenance
        "EquipmentTypeIn": lambda: ({"site_id": t["site_id"], "code": "probe-type", "name": "探测标准",
                                     "period_unit": "month", "period_count": 1,
                                     "items": [{"name": "探测项", "kind": "check"}]}, ("site_id",)),
        "cloud.maintenance.schemas.PlanIn": lambda: ({"equipment_id": t["equipment_id"], "name": "探测保养",
                                                     "responsible_id": t["technician_user_id"],
                                                     "starts_on": "2026-03-01"}, ("equipment_id", "technician_user_id")),
        "TaskCompletion": lambda: ({"results": [{"item_id": t["item_id"], "passed": True}]}, ("item_id",)),
        # patrol
        "CheckpointIn": lambda: ({"code": "PROBE-CP", "name": "探测点", "method": "qr"}, ()),
        "RouteIn": lambda: ({"name": "探测路线", "stops": [{"checkpoint_id": t["checkpoint_id"], "walk_s": 60}]},
                            ("checkpoint_id",)),
        "cloud.patrol.routes.PlanIn": lambda: ({"route_id": t["route_id"], "name": "探测巡更", "recurrence": "daily",
                                               "start_date": "2026-03-01", "shift_start": "08:00",
                                               "shift_end": "09:00", "round_every_min": 60, "round_minutes": 30,
                                               "assignees": [t["guard_id"]]}, ("route_id", "guard_id")),
        "ChallengeIn": lambda: ({"site_id": t["site_id"]}, ("site_id",)),
        "ScanIn": lambda: ({"code": t["checkpoint_code"], "nonce": "fetched when sent"}, ("checkpoint_code",)),
        "SyncIn": lambda: ({"site_id": t["site_id"], "scans": [{"code": t["checkpoint_code"],
                            "scanned_at": "2026-03-02T01:00:00+00:00", "client_ref": "probe-sync-1"}]},
                           ("site_id", "checkpoint_code")),
    }  # fmt: skip
    if model not in samples:
        raise KeyError(model)
    return samples[model]()


def form_sample(method: str, path: str, s: Scenario) -> Sample:
    """Uploads and forms, by route."""
    t = s.targets
    photo = {"photo": ("probe.png", PNG, "image/png")}
    if path == f"{API_PREFIX}/registry/import":
        doc = {"sites": [{"code": s.site_code, "name": "探测",
                          "buildings": [{"code": s.building_code, "name": "探测楼"}]}]}  # fmt: skip
        return {"files": {"file": ("probe.yaml", yaml.safe_dump(doc, allow_unicode=True))},
                "data": {"dry_run": "true"}}, ()  # fmt: skip
    if path == f"{API_PREFIX}/billing/sites/{{site_id}}/readings/import":
        csv = f"meter,read_at,value\n{t['meter_code']},2026-03-31T16:00:00+00:00,1500\n"
        return {"files": {"file": ("probe.csv", csv)}}, ("meter_code",)
    if path in (f"{API_PREFIX}/tickets/{{ticket_id}}/photos", f"{API_PREFIX}/maintenance/tasks/{{task_id}}/photos"):
        return {"files": photo}, ()
    if path == f"{API_PREFIX}/patrol/exceptions":
        data = {"checkpoint_id": str(t["checkpoint_id"]), "note": "探测异常", "client_ref": "probe-exception-1"}
        return {"files": photo, "data": data}, ("checkpoint_id",)
    raise KeyError("no sample for its form fields")


def model_name(annotation: Any) -> tuple[str, str]:
    """Qualified and short name of a body's model (``X | None`` counts as ``X``)."""
    union = get_origin(annotation) in (Union, UnionType)
    model = next(a for a in get_args(annotation) if a is not type(None)) if union else annotation
    return f"{model.__module__}.{model.__qualname__}", getattr(model, "__name__", str(model))


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    url: str
    exclusive: bool
    """Aimed at an object of the victim's alone: only 403 or 404 will do."""
    kwargs: dict[str, Any]
    roles: frozenset[Role] | None
    """Who the route lets in (None: any signed-in user)."""
    challenge_sites: tuple[int | str, ...] = ()
    """For a scan: sites to fetch the caller's challenge at, the first the scope allows (the victim's, else the
    attacker's own, as a real attacker would)."""

    def send(self, hub: Hub, user: str) -> tuple[int, str]:
        """Status and the whole answer (for the stream: its head, up to the first keep-alive)."""
        headers = hub.headers(user)
        if self.path == STREAM:
            return anyio.run(stream_head, hub.app, self.url, self.kwargs["params"], headers)
        kwargs = self.kwargs
        if self.challenge_sites:
            kwargs = kwargs | {"json": kwargs["json"] | {"nonce": challenge(hub, headers, self.challenge_sites)}}
        r = hub.client.request(self.method, self.url, headers=headers, **kwargs)
        try:
            decoded = json.dumps(r.json(), ensure_ascii=False) if r.content else ""
        except ValueError:
            decoded = ""
        return r.status_code, r.text + decoded


def challenge(hub: Hub, headers: dict[str, str], sites: tuple[int | str, ...]) -> str:
    """The caller's nonce for a scan (bound to this token), at the first of ``sites`` its scope allows."""
    for site_id in sites:
        r = hub.client.post(f"{API_PREFIX}/patrol/challenges", json={"site_id": site_id}, headers=headers)
        if r.status_code == 201:
            return str(r.json()["nonce"])
    return "no-challenge"


async def stream_head(app: FastAPI, path: str, query: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
    """Call the stream as a browser would and hang up at its first keep-alive: by then it has sent everything it
    had (the whole backlog after ``after``). A server-sent-events response never ends by itself, so the test
    client (which waits for the end) cannot call it."""
    finished = anyio.Event()
    status, chunks, asked = 0, [b""], False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if b": keep-alive" in b"".join(chunks) or not message.get("more_body", False):
                finished.set()

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": urlencode(query).encode(), "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}  # fmt: skip
    with anyio.fail_after(STREAM_LIMIT_S):
        await app(scope, receive, send)
    return status, b"".join(chunks).decode()


def fields(dependant: Dependant, kind: str) -> list[Any]:
    """The route's parameters of one kind, its dependencies' included, each once."""
    found = {f.alias: f for f in getattr(dependant, kind)}
    for sub in dependant.dependencies:
        found |= {f.alias: f for f in fields(sub, kind) if f.alias not in found}
    return list(found.values())


def allowed_roles(dependant: Dependant) -> frozenset[Role] | None:
    """The roles the route's ``require_roles`` checks let in (None when it has none)."""
    found: frozenset[Role] | None = None
    for sub in dependant.dependencies:
        if sub.call is not None and getattr(sub.call, "__qualname__", "") == "require_roles.<locals>.check":
            allowed = frozenset(inspect.getclosurevars(sub.call).nonlocals["allowed"])
            found = allowed if found is None else found & allowed
        inner = allowed_roles(sub)
        if inner is not None:
            found = inner if found is None else found & inner
    return found


def request_body(method: str, path: str, bodies: list[Any], s: Scenario) -> Sample:
    """The sample body or form of a route, aimed at ``s``'s targets (KeyError: no sample)."""
    if any(isinstance(b.field_info, params.Form | params.File) for b in bodies):
        return form_sample(method, path, s)
    if not bodies:
        return {}, ()
    qualified, short = model_name(bodies[0].field_info.annotation)
    try:
        body, named = sample_body(qualified, s)
    except KeyError:
        try:
            body, named = sample_body(short, s)
        except KeyError:
            raise KeyError(f"no sample body for {short}") from None
    return {"json": body}, named


def plan(hub: Hub, s: Scenario, own: Scenario | None = None) -> tuple[list[Call], list[str]]:
    """A call per route and method, aimed at the victim; and what could not be aimed (uncovered routes).

    With ``own``, the attacker's own objects, the calls name one object of the victim's each among the
    attacker's own: the last of several path parameters (the victim's child under the attacker's parent), or
    one body field; routes that name none are left out."""
    calls, problems = [], []
    for route in iter_route_contexts(hub.app.routes):  # app.routes alone holds included routers unexpanded
        if not isinstance(route.original_route, APIRoute):
            if route.path not in DOC_ROUTES:
                problems.append(f"{route.path}: not an API route nor a known documentation route")
            continue
        path = str(route.path)
        for method in sorted(route.methods or ()):
            if (method, path) in EXEMPT:
                continue
            where = f"{method} {path}"
            victim = s.targets | s.overrides.get(path, {})
            unknown = [n for n in route.param_convertors if n not in victim and n not in SAMPLE_PATH]
            query: dict[str, Any] = {"after": 0} if path == STREAM else {}  # the stream: its whole backlog
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
            bodies = fields(route.dependant, "body_params")
            try:
                body, named = request_body(method, path, bodies, s)
            except KeyError as missing:
                problems.append(f"{where}: {missing.args[0]}")
                continue
            variants: list[tuple[dict[str, Any], dict[str, Any], list[str]]] = []
            """(path targets, body, the names aimed at the victim)."""
            if own is None:
                variants.append((victim, body, [*route.param_convertors, *named]))
            else:
                mine = own.targets | own.overrides.get(path, {})
                *parents, last = [*route.param_convertors] or [""]
                if parents and last not in {*SAMPLE_PATH, *SITE_NUMBERED}:
                    variants.append((mine | {last: victim[last]}, request_body(method, path, bodies, own)[0], [last]))
                for name in named:
                    one = replace(own, targets=own.targets | {name: s.targets[name]})
                    variants.append((mine, request_body(method, path, bodies, one)[0], [name]))
            for targets, kwargs, aimed in variants:
                url = path
                for name in route.param_convertors:
                    url = url.replace("{" + name + "}", str(targets.get(name, SAMPLE_PATH.get(name))))
                exclusive = any(name not in s.shared and name not in SAMPLE_PATH for name in aimed)
                scan = (s.targets["site_id"], hub.ids["site_x"]) if path == SCANS else ()
                calls.append(Call(method, path, url, exclusive, {"params": query, **kwargs},
                                  allowed_roles(route.dependant), scan))  # fmt: skip
    return calls, problems


def row_counts(hub: Hub) -> dict[str, int]:
    """Rows per table: the attacker's calls must add or remove none anywhere (but for the challenges a guard
    fetches at its own site to scan with; fetching one at the victim's is a call of its own, refused)."""
    with hub.session() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables
                if t.name != "patrol_challenges"}  # fmt: skip


def refused_otherwise(call: Call, status: int, answer: str) -> bool:
    """The call's answer is one of its ATTACKER_REFUSALS."""
    refusal = ATTACKER_REFUSALS.get((call.method, call.path))
    return refusal is not None and status == refusal[0] and refusal[1] in answer


def leaks(call: Call, answer: str, markers: tuple[str, ...]) -> list[str]:
    """The victim's data in an answer, but for what the attacker sent itself (an error may quote it)."""
    sent = json.dumps(call.kwargs, ensure_ascii=False, default=str)
    return [m for m in markers if m in answer and m not in sent]


def control_user(call: Call, s: Scenario) -> str:
    """Admin with every site where admins may make the call; else the victim side's user of an allowed role."""
    if (call.method, call.path) in CONTROL_ROLE:
        return s.controls[CONTROL_ROLE[call.method, call.path]]
    if call.roles is None or Role.ADMIN in call.roles:
        return "admin"
    return next(s.controls[role] for role in (Role.FINANCE, Role.GUARD, Role.TECHNICIAN, Role.OWNER)
                if role in call.roles)  # fmt: skip


def sweep(hub: Hub, s: Scenario, *, control: bool = True) -> list[str]:
    """Every failure of the scope on every route (empty: the scope holds); ``control``: replay as the victim's
    side too."""
    calls, failures = plan(hub, s)
    for attacker in s.attackers:
        before = row_counts(hub)
        for call in calls:
            status, answer = call.send(hub, attacker)
            allowed = {403, 404} if call.exclusive else {200, 201, 202, 204, 403, 404}
            if status not in allowed and not refused_otherwise(call, status, answer):
                failures.append(f"{call.method} {call.path} as {attacker}: {status} {answer[:200]}")
            if leaked := leaks(call, answer, s.markers):
                failures.append(f"{call.method} {call.path} as {attacker}: answer shows {', '.join(leaked)}")
        after = row_counts(hub)
        if changed := {t: (before[t], after[t]) for t in before if before[t] != after[t]}:
            failures.append(f"{attacker}'s calls changed rows (table: before, after): {changed}")
    for call in sorted(calls, key=lambda c: (c.method, c.path) in CONTROL_REFUSALS) if control else ():
        user = control_user(call, s)
        status, answer = call.send(hub, user)
        refusals = {400, 403, 409, 422} if (call.method, call.path) in CONTROL_REFUSALS else set()
        if status >= 300 and status not in refusals:
            failures.append(f"{call.method} {call.path} as {user} (control): {status} {answer[:200]}")
    return failures


@pytest.fixture(autouse=True)
def quick_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stream's first keep-alive after 50 ms rather than seconds: the sweep reads up to it."""
    monkeypatch.setattr(notify_routes, "STREAM_POLL_S", 0.05)
    yield


def owner_scenario(hub: Hub, files: Path) -> Scenario:
    ids = hub.ids
    victims = seed_victims(hub, "site_x", "unit_b", "x", "owner_b", files)
    with hub.session() as session:
        unit_b = session.get_one(Unit, ids["unit_b"])
        dead_letter = session.scalars(select(DeadLetter.id).where(DeadLetter.site == "demo-site")).one()
        markers = (unit_b.code, unit_b.owner_name or "", unit_b.owner_phone or "", "EM-B2-U01", "WM-B2-U01",
                   "b2-u01-elec", "2号楼", *victims.markers)  # fmt: skip
    return Scenario(
        attackers=("owner_a",),
        targets={"site_id": ids["site_x"], "building_id": ids["building_b"], "unit_id": ids["unit_b"],
                 "meter_id": ids["meter_b"], "series_id": ids["series_b"], "equipment_id": ids["equipment_x"],
                 "edge_id": ids["edge_x"], "user_id": hub.users["owner_b"].id, "dead_letter_id": dead_letter,
                 **_victim_targets(hub, victims, "meter_b")},
        shared=frozenset({"site_id"}),  # A and B live in the same estate
        markers=markers, site_code="demo-site", building_code="B2", controls=victims.controls,
        overrides=_overrides(victims),
    )  # fmt: skip


STAFF_X = ("admin_x", "engineer_x", "finance_x", "guard_x", "technician_x")
"""Every staff role of site X."""


def staff_scenario(hub: Hub, files: Path) -> Scenario:
    ids = hub.ids
    victims = seed_victims(hub, "site_y", "unit_y", "y", "owner_y", files)
    with hub.session() as session, session.begin():  # the seeded hub has no technician of site X
        for attacker in STAFF_X:
            ensure_user(hub, session, attacker, Role(attacker.removesuffix("_x")), sites=[ids["site_x"]])
    with hub.session() as session:
        dead_letter = session.scalars(select(DeadLetter.id).where(DeadLetter.site == "other-site")).one()
    return Scenario(
        attackers=STAFF_X,
        targets={"site_id": ids["site_y"], "building_id": ids["building_y"], "unit_id": ids["unit_y"],
                 "meter_id": ids["meter_y"], "series_id": ids["series_y"], "equipment_id": ids["equipment_y"],
                 "edge_id": ids["edge_y"], "user_id": hub.users["engineer_y"].id, "dead_letter_id": dead_letter,
                 **_victim_targets(hub, victims, "meter_y")},
        shared=frozenset(),
        markers=("other-site", "别的小区", "Y-0101", "赵六", "13912345678", "EM-Y-0101", "Y-PUMP", "y-edge",
                 "y-0101-elec", "other-site secret", *victims.markers),
        site_code="other-site", building_code="YB1", controls=victims.controls, overrides=_overrides(victims),
    )  # fmt: skip


def _victim_targets(hub: Hub, victims: Victims, meter_key: str) -> dict[str, int | str]:
    """The seeded objects of the new domains, the victim site's guard, and the victim meter's code (readings
    files name meters by code)."""
    with hub.session() as session:
        meter = session.get_one(Meter, hub.ids[meter_key])
        return {**victims.targets, "guard_id": victims.guard_id, "meter_code": meter.code}


def _overrides(victims: Victims) -> dict[str, dict[str, int | str]]:
    return {f"{API_PREFIX}/patrol/sites/{{site_id}}/badges/{{user_id}}": {"user_id": victims.guard_id}}


def test_owner_a_reaches_nothing_of_owner_bs_unit(hub: Hub, tmp_path: Path) -> None:
    assert sweep(hub, owner_scenario(hub, tmp_path)) == []


def test_staff_of_site_x_reach_nothing_of_site_y(hub: Hub, tmp_path: Path) -> None:
    """Every staff role of site X in turn, on one seeded hub (the control replay once, after them all)."""
    assert sweep(hub, staff_scenario(hub, tmp_path)) == []


def test_staff_reach_nothing_of_site_y_by_naming_it_in_a_body_on_their_own_sites_routes(
    hub: Hub, tmp_path: Path
) -> None:
    """The path names site X's objects (the attacker's own; a child object of site Y's under a parent of site
    X's), the body site Y's: a refusal (4xx), no leak and no change, so a route that checks only its (first) path
    object cannot write or show another site's."""
    own = owner_scenario(hub, tmp_path)  # site X's objects, as owner B's victims are
    victim = staff_scenario(hub, tmp_path)
    calls, problems = plan(hub, victim, own)
    assert problems == [] and len(calls) >= 15
    failures, before = [], row_counts(hub)
    for attacker in victim.attackers:
        for call in calls:
            status, answer = call.send(hub, attacker)
            if status < 400 and not refused_otherwise(call, status, answer):
                failures.append(f"{call.method} {call.path} as {attacker}: {status} {answer[:200]}")
            if leaked := leaks(call, answer, victim.markers):
                failures.append(f"{call.method} {call.path} as {attacker}: answer shows {', '.join(leaked)}")
    after = row_counts(hub)
    assert failures == [] and {t: (n, after[t]) for t, n in before.items() if after[t] != n} == {}


def test_ticket_escalations_go_only_to_staff_of_the_tickets_site(hub: Hub) -> None:
    """The team lead and manager receive the site's ticket descriptions: an owner or another site's staff may not
    be named (found by the body sweep above: admin_x could make site Y's technician site X's team lead)."""
    url = f"{API_PREFIX}/tickets/sites/{hub.ids['site_x']}/settings"
    for field, user in (("team_lead_id", "owner_a"), ("team_lead_id", "engineer_y"), ("manager_id", "owner_b")):
        refused = hub.client.put(url, json={field: hub.users[user].id}, headers=hub.headers("admin_x"))
        assert refused.status_code == 422 and "is not staff of site" in refused.text, (field, user, refused.text)
    own = {"team_lead_id": hub.users["engineer_x"].id, "manager_id": hub.users["admin_x"].id}
    assert hub.client.put(url, json=own, headers=hub.headers("admin_x")).status_code == 200


def test_the_sweep_catches_a_leaky_route_and_refuses_uncovered_ones(hub: Hub, tmp_path: Path) -> None:
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

    failures = sweep(hub, owner_scenario(hub, tmp_path), control=False)
    assert any(f.startswith(f"GET {API_PREFIX}/units/{{unit_id}}/leak as owner_a: 200") for f in failures)
    assert any(f.startswith(f"GET {API_PREFIX}/units/{{unit_id}}/leak as owner_a: answer shows") for f in failures)
    assert f"GET {API_PREFIX}/widgets/{{widget_id}}: no victim object for path parameter widget_id" in failures
    assert any(f.startswith(f"POST {API_PREFIX}/gadgets: no sample body for") for f in failures), failures


def test_the_stream_carries_only_the_signed_in_users_notifications(hub: Hub, tmp_path: Path) -> None:
    """Read as the sweep reads it: from ``after=0``, the victim's notification is in the owner's own stream and
    in nobody else's."""
    s = owner_scenario(hub, tmp_path)
    (call,) = [c for c in plan(hub, s)[0] if c.path == STREAM]
    notice = next(m for m in s.markers if m.endswith("账单已出"))
    own_status, own = call.send(hub, "owner_b")
    assert own_status == 200 and notice in own and "event: notification" in own
    for other in ("owner_a", "admin", "finance_x"):
        status, answer = call.send(hub, other)
        assert status == 200 and notice not in answer, other


def test_the_walk_sees_every_documented_route_and_exemptions_are_real(hub: Hub, tmp_path: Path) -> None:
    """Guards the guard: if FastAPI changes how routes are stored again, the sweep must not go vacuous."""
    documented = {(m.upper(), path) for path, ops in hub.app.openapi()["paths"].items() for m in ops}
    hidden = {(m, r.path) for r in iter_route_contexts(hub.app.routes) if isinstance(r.original_route, APIRoute)
              and not r.original_route.include_in_schema for m in r.methods or ()}  # fmt: skip
    calls, _ = plan(hub, owner_scenario(hub, tmp_path))
    swept = {(c.method, c.path) for c in calls}
    assert documented | hidden == swept | set(EXEMPT)
    assert len(swept) >= 140


def test_every_route_but_the_exempt_needs_a_token(hub: Hub, tmp_path: Path) -> None:
    """Without a token every covered route answers 401 (public ones are exactly EXEMPT minus /auth/me)."""
    calls, problems = plan(hub, owner_scenario(hub, tmp_path))
    assert problems == []
    refused = {(c.method, c.path): _anonymous(hub, c) for c in calls}
    assert {k: v for k, v in refused.items() if v != 401} == {}
    assert hub.client.get(f"{API_PREFIX}/auth/me").status_code == 401


def _anonymous(hub: Hub, call: Call) -> int:
    if call.path == STREAM:
        return anyio.run(stream_head, hub.app, call.url, call.kwargs["params"], {})[0]
    return hub.client.request(call.method, call.url, **call.kwargs).status_code


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
