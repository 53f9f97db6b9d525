"""Ticket pages: the technician's mobile page, the owner's repair pages, and the staff console (board, dispatch,
SLA breaches, statistics).

Every action goes through ``cloud.tickets.services`` (who may act, the state machine, history, notices), inside
a savepoint: a refused action leaves nothing behind and the page shows the service's reason. Who sees which
ticket: owners the requests they made for their units (``services.visible``), technicians the tickets assigned
to them, admins and engineers every ticket of their sites. A ticket out of reach is 404, like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from cloud.api.deps import SessionDep
from cloud.api.scope import Scope
from cloud.auth.models import Role, User
from cloud.console.i18n import CATALOGUE
from cloud.console.pages import PageScope, PageUser, render
from cloud.maintenance.pages import task_rows
from cloud.maintenance.planner import SHANGHAI
from cloud.portal.common import local, page_roles, yuan
from cloud.registry.models import Building, Equipment, Meter, Site, Unit
from cloud.tickets import services
from cloud.tickets.attachments import AttachmentStore
from cloud.tickets.dispatch import rank
from cloud.tickets.models import (
    OPEN_STATES,
    Attachment,
    Category,
    Comment,
    GrabOffer,
    ItemKind,
    Rating,
    SlaMark,
    Technician,
    Ticket,
    TicketEvent,
    TicketPause,
    TicketState,
    WorkItem,
)
from cloud.tickets.routes import StoreDep
from cloud.tickets.sla import Mark, clocks, site_hours
from cloud.tickets.states import TicketError, allowed_actions
from cloud.tickets.stats import ticket_stats
from cloud.tickets.technicians import on_shift, open_load

router = APIRouter(prefix="/console", include_in_schema=False)
Owner = Annotated[User, Depends(page_roles(Role.OWNER))]
Worker = Annotated[User, Depends(page_roles(Role.TECHNICIAN, Role.ENGINEER))]
Staff = Annotated[User, Depends(page_roles(*services.STAFF_ACTORS))]
BOARD_STATES = (TicketState.NEW, TicketState.ASSIGNED, TicketState.ACCEPTED, TicketState.IN_PROGRESS,
                TicketState.VERIFY, TicketState.DONE, TicketState.FOLLOW_UP)  # fmt: skip
BOARD_LIMIT = 50
"""Tickets per board column (oldest first: the ones waiting longest)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _attempt(session: Session, action: Callable[[], object]) -> TicketError | None:
    """Run one ticket action in a savepoint; a refusal rolls back whatever it did and is returned for the page."""
    try:
        with session.begin_nested():
            action()
    except TicketError as exc:
        return exc
    return None


def _not_found(ticket_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"ticket {ticket_id} not found")


def my_technician_ids(session: Session, user: User) -> list[int]:
    return list(session.scalars(select(Technician.id).where(Technician.user_id == user.id)))


def label(key: str) -> str:
    """A catalogue key when there is one (history actions come from several domains), else the raw value."""
    return key if key in CATALOGUE else ""


def _store_photo(
    session: Session, store: AttachmentStore, ticket: Ticket, user: User, upload: UploadFile
) -> Attachment:
    """Read at most one byte more than the store accepts, so an oversized upload is refused without reading it all."""
    data = upload.file.read(store.max_bytes + 1)
    return services.attach_photo(session, store, ticket, user, upload.filename or "photo", data, _now())


def _photo_response(session: Session, store: AttachmentStore, ticket: Ticket, attachment_id: int) -> Response:
    row = session.scalars(
        select(Attachment).where(Attachment.id == attachment_id, Attachment.ticket_id == ticket.id)
    ).first()
    path = store.path(row) if row is not None else None
    if row is None or path is None or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"photo {attachment_id} of ticket {ticket.id} not found")
    return FileResponse(path, media_type=row.content_type, headers={"Cache-Control": "private, max-age=3600"})


# --- what every ticket page shows ---


def ticket_view(session: Session, ticket: Ticket) -> dict[str, Any]:
    """History, comments, photos, materials and rating of one ticket, with names for the people in it."""
    events = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))
    comments = session.scalars(select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.id)).all()
    authors = {u.id: u.full_name or u.username for u in session.scalars(
        select(User).where(User.id.in_({c.author_id for c in comments if c.author_id is not None})))}  # fmt: skip
    items = session.scalars(select(WorkItem).where(WorkItem.ticket_id == ticket.id).order_by(WorkItem.id)).all()
    technician = None
    if ticket.assignee_id is not None:
        technician = session.scalar(
            select(User.full_name).join(Technician, Technician.user_id == User.id)
            .where(Technician.id == ticket.assignee_id)
        )  # fmt: skip
    return {
        "ticket": ticket,
        "events": list(events),
        "comments": [(c, authors.get(c.author_id or 0, "")) for c in comments],
        "photos": services.attachments_of(session, ticket),
        "items": items,
        "items_total": sum(i.amount_fen for i in items),
        "rating": session.scalars(select(Rating).where(Rating.ticket_id == ticket.id)).first(),
        "unit": session.get(Unit, ticket.unit_id) if ticket.unit_id else None,
        "equipment": session.get(Equipment, ticket.equipment_id) if ticket.equipment_id else None,
        "technician": technician,
        "actions": [a.value for a in allowed_actions(ticket.state)],
        "local": local,
        "yuan": yuan,
        "label": label,
    }


# --- technician (mobile) ---


def worker_ticket(session: Session, user: User, ticket_id: int, *, lock: bool = False) -> Ticket:
    """A ticket assigned to this technician (engineers too: they take tickets); 404 for any other."""
    stmt = select(Ticket).where(Ticket.id == ticket_id, Ticket.assignee_id.in_(my_technician_ids(session, user)))
    ticket = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if ticket is None:
        raise _not_found(ticket_id)
    return ticket


@router.get("/tech")
def technician_page(request: Request, session: SessionDep, user: Worker, scope: PageScope) -> HTMLResponse:
    mine = my_technician_ids(session, user)
    tickets = session.scalars(
        select(Ticket).where(Ticket.assignee_id.in_(mine), Ticket.state.in_(OPEN_STATES)).order_by(Ticket.created_at)
    ).all()
    done = session.scalars(
        select(Ticket)
        .where(Ticket.assignee_id.in_(mine), Ticket.state.not_in(OPEN_STATES))
        .order_by(Ticket.completed_at.desc())
        .limit(20)
    ).all()
    profiles = session.scalars(select(Technician).where(Technician.id.in_(mine))).all()
    return render(
        request, "tickets_tech.html", user, tickets=tickets, done=done, profiles=profiles,
        offers=grab_offers(session, mine, _now()),
        tasks=task_rows(session, scope, assignee_id=user.id, open_only=True), local=local,
    )  # fmt: skip


def grab_offers(session: Session, technician_ids: list[int], now: datetime) -> list[Ticket]:
    """抢单: new tickets offered to these technicians in the ticket's current round, still open to grab."""
    return list(session.scalars(
        select(Ticket)
        .join(GrabOffer, and_(GrabOffer.ticket_id == Ticket.id, GrabOffer.round == Ticket.dispatch_round))
        .where(GrabOffer.technician_id.in_(technician_ids), GrabOffer.deadline_at > now,
               Ticket.state == TicketState.NEW)
        .order_by(Ticket.created_at)
    ).unique())  # fmt: skip


@router.post("/tech/tickets/{ticket_id}/grab")
def grab(ticket_id: int, session: SessionDep, user: Worker) -> Response:
    """The first to grab gets it (the services decide, across hub processes); a lost race is answered 409."""
    stmt = select(Ticket).where(Ticket.id == ticket_id, Ticket.id.in_(
        select(GrabOffer.ticket_id).where(GrabOffer.technician_id.in_(my_technician_ids(session, user)))
    )).with_for_update()  # fmt: skip
    ticket = session.scalars(stmt).first()
    if ticket is None:
        raise _not_found(ticket_id)
    if (error := _attempt(session, lambda: services.grab(session, ticket, user, _now()))) is not None:
        raise HTTPException(error.status, str(error))
    return _see_other(f"/console/tech/tickets/{ticket_id}")


@router.get("/tech/tickets/{ticket_id}")
def technician_ticket(request: Request, ticket_id: int, session: SessionDep, user: Worker) -> HTMLResponse:
    return _technician_ticket(request, session, user, ticket_id)


def _technician_ticket(
    request: Request, session: Session, user: User, ticket_id: int, error: TicketError | None = None
) -> HTMLResponse:
    ticket = worker_ticket(session, user, ticket_id)
    response = render(request, "tickets_tech_ticket.html", user, error=error, **ticket_view(session, ticket))
    if error is not None:
        response.status_code = error.status
    return response


def _worker_action(
    request: Request, session: Session, user: User, ticket_id: int, act: Callable[[Ticket], object]
) -> Response:
    ticket = worker_ticket(session, user, ticket_id, lock=True)
    if (error := _attempt(session, lambda: act(ticket))) is not None:
        return _technician_ticket(request, session, user, ticket_id, error)
    return _see_other(f"/console/tech/tickets/{ticket_id}")


@router.post("/tech/tickets/{ticket_id}/accept")
def accept(request: Request, ticket_id: int, session: SessionDep, user: Worker) -> Response:
    return _worker_action(request, session, user, ticket_id, lambda t: services.accept(session, t, user, _now()))


@router.post("/tech/tickets/{ticket_id}/arrive")
def arrive(request: Request, ticket_id: int, session: SessionDep, user: Worker) -> Response:
    return _worker_action(request, session, user, ticket_id, lambda t: services.arrive(session, t, user, _now()))


@router.post("/tech/tickets/{ticket_id}/decline")
def decline(
    request: Request, ticket_id: int, session: SessionDep, user: Worker, reason: Annotated[str, Form()] = ""
) -> Response:
    return _worker_action(request, session, user, ticket_id,
                          lambda t: services.decline(session, t, user, reason, _now()))  # fmt: skip


@router.post("/tech/tickets/{ticket_id}/complete")
def complete(
    request: Request, ticket_id: int, session: SessionDep, user: Worker, note: Annotated[str, Form()] = ""
) -> Response:
    return _worker_action(request, session, user, ticket_id,
                          lambda t: services.complete(session, t, user, _now(), note=note))  # fmt: skip


@router.post("/tech/tickets/{ticket_id}/comment")
def comment(
    request: Request, ticket_id: int, session: SessionDep, user: Worker, body: Annotated[str, Form()] = ""
) -> Response:
    return _worker_action(request, session, user, ticket_id,
                          lambda t: services.add_comment(session, t, user, body, _now()))  # fmt: skip


@router.post("/tech/tickets/{ticket_id}/material")
def material(
    request: Request,
    ticket_id: int,
    session: SessionDep,
    user: Worker,
    description: Annotated[str, Form()] = "",
    quantity: Annotated[str, Form()] = "",
    unit_price: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = ItemKind.MATERIAL.value,
) -> Response:
    """Materials or labour; the unit price is typed in yuan and stored in fen (no float on the way)."""

    def add(ticket: Ticket) -> object:
        return services.add_item(
            session, ticket, user, kind=_item_kind(kind), description=description,
            quantity=_decimal(quantity, "quantity"), unit_price_fen=_fen(unit_price), now=_now(),
        )  # fmt: skip

    return _worker_action(request, session, user, ticket_id, add)


def _item_kind(value: str) -> ItemKind:
    try:
        return ItemKind(value)
    except ValueError:
        raise TicketError(f"{value!r} is neither material nor labour", status=422) from None


def _decimal(value: str, what: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise TicketError(f"{what} must be a number, got {value!r}", status=422) from None
    if not number.is_finite():
        raise TicketError(f"{what} must be a number, got {value!r}", status=422)
    return number


def _fen(yuan_text: str) -> int:
    """¥12.5 -> 1250 fen; more than two decimals is a typing error, not something to round away."""
    amount = _decimal(yuan_text or "0", "unit price") * 100
    if amount != amount.to_integral_value():
        raise TicketError(f"unit price {yuan_text} has more than two decimals (fen)", status=422)
    return int(amount)


@router.post("/tech/tickets/{ticket_id}/photo")
def technician_photo(
    request: Request,
    ticket_id: int,
    session: SessionDep,
    user: Worker,
    store: StoreDep,
    photo: Annotated[UploadFile, File()],
) -> Response:
    return _worker_action(request, session, user, ticket_id, lambda t: _store_photo(session, store, t, user, photo))


# --- owner ---


def owner_ticket(session: Session, scope: Scope, user: User, ticket_id: int) -> Ticket:
    try:
        return services.get_visible(session, scope, user, ticket_id)
    except TicketError:
        raise _not_found(ticket_id) from None


@router.get("/repairs")
def repairs_page(request: Request, session: SessionDep, user: Owner, scope: PageScope) -> HTMLResponse:
    tickets = session.scalars(
        select(Ticket).where(services.visible(scope, user)).order_by(Ticket.created_at.desc()).limit(100)
    ).all()
    return render(request, "tickets_repairs.html", user, tickets=tickets, local=local)


def _new_repair_form(
    request: Request, session: Session, user: User, scope: Scope, error: TicketError | None = None
) -> HTMLResponse:
    units = session.scalars(select(Unit).where(scope.where(Unit)).order_by(Unit.code)).all()
    response = render(request, "tickets_repair_new.html", user, units=units, categories=list(Category), error=error)
    if error is not None:
        response.status_code = error.status
    return response


@router.get("/repairs/new")
def new_repair(request: Request, session: SessionDep, user: Owner, scope: PageScope) -> HTMLResponse:
    return _new_repair_form(request, session, user, scope)


@router.post("/repairs")
def submit_repair(
    request: Request,
    session: SessionDep,
    user: Owner,
    scope: PageScope,
    store: StoreDep,
    unit_id: Annotated[int, Form()],
    category: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    preferred_from: Annotated[str, Form()] = "",
    preferred_to: Annotated[str, Form()] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """报事报修: the request, its photo and its preferred visit window in one step (all or nothing)."""
    created: list[Ticket] = []

    def submit() -> None:
        ticket = services.open_repair_request(
            session, user, unit_id=unit_id, category=_category(category), description=description, now=_now(),
            preferred_from=_local_time(preferred_from), preferred_to=_local_time(preferred_to),
        )  # fmt: skip
        if photo is not None and photo.filename:
            _store_photo(session, store, ticket, user, photo)
        created.append(ticket)

    if (error := _attempt(session, submit)) is not None:
        return _new_repair_form(request, session, user, scope, error)
    return _see_other(f"/console/repairs/{created[0].id}")


def _category(value: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise TicketError(f"choose a category: {', '.join(c.value for c in Category)}", status=422) from None


def _local_time(value: str) -> datetime | None:
    """A datetime-local input (Asia/Shanghai wall time) as an aware UTC moment."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise TicketError(f"{value!r} is not a date and time like 2026-03-01T14:00", status=422) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(UTC)


@router.get("/repairs/{ticket_id}")
def repair_page(request: Request, ticket_id: int, session: SessionDep, user: Owner, scope: PageScope) -> HTMLResponse:
    return _repair_page(request, session, user, scope, ticket_id)


def _repair_page(
    request: Request, session: Session, user: User, scope: Scope, ticket_id: int, error: TicketError | None = None
) -> HTMLResponse:
    ticket = owner_ticket(session, scope, user, ticket_id)
    response = render(request, "tickets_repair.html", user, error=error, **ticket_view(session, ticket))
    if error is not None:
        response.status_code = error.status
    return response


@router.post("/repairs/{ticket_id}/rate")
def rate(
    request: Request,
    ticket_id: int,
    session: SessionDep,
    user: Owner,
    scope: PageScope,
    speed: Annotated[int, Form(ge=1, le=5)],
    attitude: Annotated[int, Form(ge=1, le=5)],
    quality: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    ticket = owner_ticket(session, scope, user, ticket_id)

    def rating() -> object:
        return services.rate(session, ticket, user, speed=speed, attitude=attitude, quality=quality, comment=comment,
                             now=_now())  # fmt: skip

    if (error := _attempt(session, rating)) is not None:
        return _repair_page(request, session, user, scope, ticket_id, error)
    return _see_other(f"/console/repairs/{ticket_id}")


@router.get("/tickets/{ticket_id}/photos/{attachment_id}")
def photo(
    ticket_id: int, attachment_id: int, session: SessionDep, user: PageUser, scope: PageScope, store: StoreDep
) -> Response:
    """A ticket's photo, for whoever may see the ticket on their pages (else 404)."""
    if user.role is Role.OWNER:
        ticket = owner_ticket(session, scope, user, ticket_id)
    elif user.role in services.STAFF_ACTORS:
        ticket = _staff_ticket(session, scope, ticket_id)
    else:
        ticket = worker_ticket(session, user, ticket_id)
    return _photo_response(session, store, ticket, attachment_id)


# --- staff console ---


def _staff_ticket(session: Session, scope: Scope, ticket_id: int, *, lock: bool = False) -> Ticket:
    stmt = select(Ticket).where(Ticket.id == ticket_id, scope.where(Ticket))
    ticket = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if ticket is None:
        raise _not_found(ticket_id)
    return ticket


@router.get("/tickets")
def board(request: Request, session: SessionDep, user: Staff, scope: PageScope) -> HTMLResponse:
    columns: dict[TicketState, list[Ticket]] = {}
    for state in BOARD_STATES:
        columns[state] = list(session.scalars(
            select(Ticket).where(scope.where(Ticket), Ticket.state == state).order_by(Ticket.created_at)
            .limit(BOARD_LIMIT)
        ))  # fmt: skip
    return render(request, "tickets_board.html", user, columns=columns, local=local)


@router.get("/tickets/dispatch")
def dispatch_page(request: Request, session: SessionDep, user: Staff, scope: PageScope) -> HTMLResponse:
    now = _now()
    rows = session.execute(
        select(Technician, User, Site.code)
        .join(User, User.id == Technician.user_id)
        .join(Site, Site.id == Technician.site_id)
        .where(scope.where(Technician))
        .order_by(Site.code, User.full_name)
    ).all()
    ids = [tech.id for tech, _, _ in rows]
    loads, shift = open_load(session, ids), on_shift(session, ids, now)
    buildings = {b.id: b.code for b in session.scalars(select(Building).where(scope.where(Building)))}
    waiting = session.scalars(
        select(Ticket).where(scope.where(Ticket), Ticket.state.in_((TicketState.NEW, TicketState.ASSIGNED)))
        .order_by(Ticket.created_at).limit(BOARD_LIMIT)
    ).all()  # fmt: skip
    suggestions = {t.id: rank(session, t, now)[:3] for t in waiting}
    names = {tech.id: user_.full_name or user_.username for tech, user_, _ in rows}
    return render(
        request, "tickets_dispatch.html", user, technicians=rows, loads=loads, on_shift=shift, buildings=buildings,
        waiting=waiting, suggestions=suggestions, names=names, local=local,
    )  # fmt: skip


@router.get("/tickets/sla")
def sla_page(request: Request, session: SessionDep, user: Staff, scope: PageScope) -> HTMLResponse:
    """Missed clocks, newest first: breaches (team lead told) and level-2 escalations (manager told)."""
    marks = session.execute(
        select(SlaMark, Ticket)
        .join(Ticket, Ticket.id == SlaMark.ticket_id)
        .where(scope.where(Ticket), SlaMark.mark.in_((Mark.BREACH.value, Mark.LEVEL2.value)))
        .order_by(SlaMark.at.desc())
        .limit(200)
    ).all()
    return render(request, "tickets_sla.html", user, marks=marks, local=local)


@router.get("/tickets/stats")
def stats_page(
    request: Request, session: SessionDep, user: Staff, scope: PageScope,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> HTMLResponse:  # fmt: skip
    """Statistics of tickets opened in the last ``days`` days, with names for technicians and assets."""
    until = _now()
    stats = ticket_stats(session, scope.where(Ticket), until - timedelta(days=days), until)
    technicians = dict(session.execute(
        select(Technician.id, User.full_name).join(User, User.id == Technician.user_id).where(scope.where(Technician))
    ).all())  # fmt: skip
    equipment = dict(session.execute(select(Equipment.id, Equipment.code).where(scope.where(Equipment))).all())
    meters = dict(session.execute(select(Meter.id, Meter.code).where(scope.where(Meter))).all())
    return render(
        request, "tickets_stats.html", user, stats=stats, days=days, technicians=technicians,
        assets={"equipment": equipment, "meter": meters}, duration=duration,
    )  # fmt: skip


def duration(seconds: float | int | None) -> str:
    """Seconds as people read them: 45 min, 3 h 20 min, 2 d 4 h."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@router.get("/tickets/{ticket_id}")
def staff_ticket(request: Request, ticket_id: int, session: SessionDep, user: Staff, scope: PageScope) -> HTMLResponse:
    return _staff_ticket_page(request, session, user, scope, ticket_id)


def _staff_ticket_page(
    request: Request, session: Session, user: User, scope: Scope, ticket_id: int, error: TicketError | None = None
) -> HTMLResponse:
    ticket = _staff_ticket(session, scope, ticket_id)
    now = _now()
    pauses = session.scalars(select(TicketPause).where(TicketPause.ticket_id == ticket.id)).all()
    candidates = rank(session, ticket, now) if ticket.state in (TicketState.NEW, TicketState.ASSIGNED,
                                                                  TicketState.ACCEPTED) else []  # fmt: skip
    names = dict(session.execute(
        select(Technician.id, User.full_name).join(User, User.id == Technician.user_id)
        .where(Technician.site_id == ticket.site_id)
    ).all())  # fmt: skip
    response = render(
        request, "tickets_staff_ticket.html", user, error=error, candidates=candidates, names=names,
        clocks=clocks(ticket, pauses, site_hours(session, ticket.site_id), now), **ticket_view(session, ticket),
    )  # fmt: skip
    if error is not None:
        response.status_code = error.status
    return response


def _staff_action(
    request: Request, session: Session, user: User, scope: Scope, ticket_id: int, act: Callable[[Ticket], object]
) -> Response:
    ticket = _staff_ticket(session, scope, ticket_id, lock=True)
    if (error := _attempt(session, lambda: act(ticket))) is not None:
        return _staff_ticket_page(request, session, user, scope, ticket_id, error)
    return _see_other(f"/console/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id}/assign")
def assign(
    request: Request, ticket_id: int, session: SessionDep, user: Staff, scope: PageScope,
    technician_id: Annotated[int, Form()],
) -> Response:  # fmt: skip
    return _staff_action(request, session, user, scope, ticket_id,
                         lambda t: services.assign_manually(session, t, user, technician_id, _now()))  # fmt: skip


@router.post("/tickets/{ticket_id}/close")
def close(
    request: Request, ticket_id: int, session: SessionDep, user: Staff, scope: PageScope,
    note: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    return _staff_action(request, session, user, scope, ticket_id,
                         lambda t: services.close(session, t, user, _now(), note))  # fmt: skip


@router.post("/tickets/{ticket_id}/cancel")
def cancel(
    request: Request, ticket_id: int, session: SessionDep, user: Staff, scope: PageScope,
    reason: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    return _staff_action(request, session, user, scope, ticket_id,
                         lambda t: services.cancel(session, t, user, reason, _now()))  # fmt: skip
