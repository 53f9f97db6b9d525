"""Staff console for tickets: the board by state, the dispatch view with skills, duty and load and a manual
assignment, SLA breaches, statistics; each in Chinese and English, scoped to the user's sites. And every text
key the ticket and maintenance templates use exists in both languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from cloud.alarms.models import AlarmState
from cloud.console.i18n import CATALOGUE, LANGS
from cloud.db import session_factory
from cloud.maintenance.models import PeriodUnit, TaskState
from cloud.tickets.models import Category, Priority, SlaMark, Source, Ticket, TicketState
from cloud.tickets.sla import ClockName, Mark
from cloud.tickets.states import Action
from tests.cloud.api.hub_app import Hub
from tests.cloud.ticket_pages.conftest import signed_in
from tests.cloud.ticket_pages.test_repair_pages import report

TEMPLATES = Path(__file__).resolve().parents[3] / "cloud" / "console" / "templates"
MY_TEMPLATES = sorted([*TEMPLATES.glob("tickets_*.html"), *TEMPLATES.glob("maint_*.html")])


def test_the_board_sla_breaches_and_statistics_in_both_languages(desk: Hub) -> None:
    ticket_id = report(signed_in(desk, "owner_a"), desk)
    staff = signed_in(desk, "engineer_x")
    board = staff.get("/console/tickets")
    assert board.status_code == 200
    column = re.search(r'data-state="assigned">(.*?)</section>', board.text, re.S)
    assert column is not None and f"/console/tickets/{ticket_id}" in column.group(1)
    assert staff.get(f"/console/tickets/{ticket_id}").status_code == 200

    with session_factory(desk.engine).begin() as session:
        session.add(SlaMark(ticket_id=ticket_id, cycle=0, clock=ClockName.RESPONSE.value, mark=Mark.BREACH.value,
                            at=datetime.now(UTC)))  # fmt: skip
    breaches = staff.get("/console/tickets/sla").text
    assert f"/console/tickets/{ticket_id}" in breaches and "超时（通知班组长）" in breaches
    stats = staff.get("/console/tickets/stats?days=7")
    assert stats.status_code == 200
    overall = re.search(r'data-testid="stats-overall">(.*?)</table>', stats.text, re.S)
    assert overall is not None and "<td>1</td><td>0</td><td>0.0%</td>" in overall.group(1)
    assert "给排水" in stats.text and "plumber" in stats.text
    english = staff.get("/console/tickets?lang=en").text
    assert "Ticket board" in english and "Assigned" in english
    assert "Statistics" in staff.get("/console/tickets/stats?lang=en").text
    assert staff.get("/console/tickets/stats?days=0").status_code == 422


def test_staff_of_another_site_see_nothing_of_it(desk: Hub) -> None:
    ticket_id = report(signed_in(desk, "owner_a"), desk)
    other = signed_in(desk, "engineer_y")
    assert other.get(f"/console/tickets/{ticket_id}").status_code == 404
    assert f"/console/tickets/{ticket_id}" not in other.get("/console/tickets").text
    assert "plumber" not in other.get("/console/tickets/dispatch").text
    assert other.post(f"/console/tickets/{ticket_id}/cancel", data={"reason": "x"}).status_code == 404
    assert signed_in(desk, "finance_x").get("/console/tickets").status_code == 403
    page = signed_in(desk, "owner_a").get(f"/console/repairs/{ticket_id}").text
    photo = re.search(rf"/console/tickets/{ticket_id}/photos/\d+", page)
    assert photo is not None
    assert signed_in(desk, "engineer_x").get(photo.group()).status_code == 200
    assert other.get(photo.group()).status_code == 404


def test_dispatch_shows_skills_duty_and_load_and_a_manual_assignment_is_checked(desk: Hub) -> None:
    ticket_id = report(signed_in(desk, "owner_a"), desk)
    staff = signed_in(desk, "engineer_x")
    dispatch = staff.get("/console/tickets/dispatch").text
    row = re.search(r"<tr><td>plumber</td>.*?</tr>", dispatch, re.S)
    assert row is not None and "给排水" in row.group() and "在岗" in row.group() and "<td>1</td>" in row.group()

    wrong = staff.post(f"/console/tickets/{ticket_id}/assign",
                       data={"technician_id": str(desk.ids["tech_electrician"])})  # fmt: skip
    assert wrong.status_code == 422 and "lacks the skill plumbing" in wrong.text
    with session_factory(desk.engine)() as session:
        assert session.get_one(Ticket, ticket_id).assignee_id == desk.ids["tech_plumber"], "the refusal changed nothing"
    again = staff.post(f"/console/tickets/{ticket_id}/assign", data={"technician_id": str(desk.ids["tech_plumber"])},
                       follow_redirects=False)  # fmt: skip
    assert again.status_code == 303
    with session_factory(desk.engine)() as session:
        assert session.get_one(Ticket, ticket_id).dispatch_round == 2, "a manual override is a new dispatch round"


def test_every_text_key_of_the_ticket_and_maintenance_pages_has_both_languages() -> None:
    used: set[str] = set()
    for template in MY_TEMPLATES:
        used |= set(re.findall(r"""t\(["']([a-z0-9_]+)["']\)""", template.read_text()))
    dynamic = {
        "ticket_state_": TicketState, "ticket_category_": Category, "ticket_priority_": Priority,
        "ticket_source_": Source, "ticket_sla_": ClockName, "tp_mark_": Mark, "maint_state_": TaskState,
        "maint_period_": PeriodUnit, "maint_alarm_": AlarmState, "tp_action_": Action,
    }  # fmt: skip
    for prefix, values in dynamic.items():
        used |= {f"{prefix}{v.value}" for v in values}
    used |= {f"tp_clock_{s}" for s in ("ok", "warning", "breached", "met", "missed")}
    used |= {f"maint_kind_{k}" for k in ("alarm", "ticket", "maintenance")} | {"tp_kind_material", "tp_kind_labour"}
    used |= {f"tp_{aspect}" for aspect in ("speed", "attitude", "quality")}
    missing = sorted(k for k in used if k not in CATALOGUE or any(not CATALOGUE[k].get(lang) for lang in LANGS))
    assert not missing, f"text keys without both languages: {missing}"
    assert len(MY_TEMPLATES) >= 15
