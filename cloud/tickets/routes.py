"""The ticket API under /api/v1/tickets: the board, repair requests, every action of the state machine,
comments, materials, photos, ratings, technicians, site settings and statistics.

A ticket in a path is looked up through ``services.visible``: owners reach only the requests they made for their
units, staff the tickets of their sites; anything else is 404. Roles are declared on each route; the services
check the finer rules (the assigned technician, the reporting owner).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile, status
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import STAFF, CurrentUser, ScopeDep, SessionDep, require_roles
from cloud.api.scope import Scope
from cloud.auth.models import Role, User
from cloud.auth.services import reach
from cloud.tickets import schemas, services
from cloud.tickets.attachments import AttachmentStore
from cloud.tickets.models import (
    Assignment,
    Attachment,
    Comment,
    Rating,
    SlaPolicy,
    Technician,
    Ticket,
    TicketEvent,
    TicketSiteSettings,
    TicketState,
    WorkItem,
)
from cloud.tickets.sla import BusinessHours, clocks, site_hours
from cloud.tickets.states import LABELS, TicketError, allowed_actions
from cloud.tickets.stats import ticket_stats
from cloud.tickets.technicians import add_shift, on_shift, open_load, set_location, upsert_technician

router = APIRouter(prefix="/tickets", tags=["tickets"])

EVERYONE = (*STAFF, Role.OWNER)
WORKERS = (Role.ADMIN, Role.ENGINEER, Role.TECHNICIAN)
MANAGERS = (Role.ADMIN, Role.ENGINEER)
PAGE_MAX = 200


def get_now(request: Request) -> datetime:
    """The current time; tests give the app a clock (``app.state.ticket_clock``) to move it."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "ticket_clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def get_store(request: Request) -> AttachmentStore:
    """Photo storage: ``app.state.ticket_files`` if set, else configured from the environment."""
    store: AttachmentStore | None = getattr(request.app.state, "ticket_files", None)
    if store is None:
        store = AttachmentStore.from_env()
        request.app.state.ticket_files = store
    return store


NowDep = Annotated[datetime, Depends(get_now)]
StoreDep = Annotated[AttachmentStore, Depends(get_store)]


def visible_ticket(ticket_id: int, session: SessionDep, user: CurrentUser, scope: ScopeDep) -> Ticket:
    return services.get_visible(session, scope, user, ticket_id)


def locked_ticket(ticket_id: int, session: SessionDep, user: CurrentUser, scope: ScopeDep) -> Ticket:
    """The ticket, row-locked until the request's transaction ends: concurrent actions on it take turns."""
    return services.get_visible(session, scope, user, ticket_id, lock=True)


TicketDep = Annotated[Ticket, Depends(visible_ticket)]
LockedDep = Annotated[Ticket, Depends(locked_ticket)]


def _hours_cache(session: Session) -> Callable[[int], BusinessHours | None]:
    cache: dict[int, BusinessHours | None] = {}

    def get(site_id: int) -> BusinessHours | None:
        if site_id not in cache:
            cache[site_id] = site_hours(session, site_id)
        return cache[site_id]

    return get


def ticket_out(session: Session, ticket: Ticket, now: datetime, hours: BusinessHours | None) -> schemas.TicketOut:
    return schemas.TicketOut.model_validate(
        {
            **{k: getattr(ticket, k) for k in schemas.TicketOut.model_fields if hasattr(ticket, k)},
            "state_label": LABELS[ticket.state],
            "allowed_actions": [a.value for a in allowed_actions(ticket.state)],
            "clocks": [
                schemas.ClockOut(**{**c.__dict__, "name": c.name.value})
                for c in clocks(ticket, services.pauses_of(session, ticket), hours, now)
            ],
        }
    )


def detail_out(session: Session, ticket: Ticket, now: datetime) -> schemas.TicketDetailOut:
    def rows(model: Any, order: Any) -> list[Any]:
        return list(session.scalars(select(model).where(model.ticket_id == ticket.id).order_by(order)))

    rating = session.scalars(select(Rating).where(Rating.ticket_id == ticket.id)).first()
    base = ticket_out(session, ticket, now, site_hours(session, ticket.site_id))
    return schemas.TicketDetailOut(
        **base.model_dump(),
        assignments=[schemas.AssignmentOut.model_validate(a) for a in rows(Assignment, Assignment.round)],
        history=[schemas.EventOut.model_validate(e) for e in rows(TicketEvent, TicketEvent.id)],
        comments=[schemas.CommentOut.model_validate(c) for c in rows(Comment, Comment.id)],
        items=[schemas.ItemOut.model_validate(i) for i in rows(WorkItem, WorkItem.id)],
        photos=[schemas.AttachmentOut.model_validate(a) for a in rows(Attachment, Attachment.id)],
        rating=schemas.RatingOut.model_validate(rating) if rating else None,
    )


# --- the board and opening ---


@router.get("", dependencies=[Depends(require_roles(*EVERYONE))])
def list_tickets(
    session: SessionDep,
    user: CurrentUser,
    scope: ScopeDep,
    now: NowDep,
    state: Annotated[list[TicketState] | None, Query()] = None,
    site_id: int | None = None,
    assigned_to_me: bool = False,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    before_id: int | None = None,
) -> list[schemas.TicketOut]:
    """Newest first; page with ``before_id``. Technicians may ask for ``assigned_to_me``."""
    stmt = select(Ticket).where(services.visible(scope, user)).order_by(Ticket.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Ticket.state.in_(state))
    if site_id is not None:
        stmt = stmt.where(Ticket.site_id == site_id)
    if before_id is not None:
        stmt = stmt.where(Ticket.id < before_id)
    if assigned_to_me:
        stmt = stmt.where(Ticket.assignee_id.in_(select(Technician.id).where(Technician.user_id == user.id)))
    hours = _hours_cache(session)
    return [ticket_out(session, t, now, hours(t.site_id)) for t in session.scalars(stmt)]


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(*STAFF))])
def open_staff_ticket(
    body: schemas.StaffTicketIn, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    ticket = services.open_from_staff(session, user, now=now, **body.model_dump())
    return detail_out(session, ticket, now)


@router.post("/repair", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(Role.OWNER))])
def open_repair(
    body: schemas.RepairRequestIn, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    """报事报修: an owner asks for a repair in one of their units."""
    ticket = services.open_repair_request(session, user, now=now, **body.model_dump())
    return detail_out(session, ticket, now)


@router.get("/stats", dependencies=[Depends(require_roles(*STAFF))])
def stats(
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    now: NowDep,
    since: datetime | None = None,
    until: datetime | None = None,
    site_id: int | None = None,
) -> dict[str, object]:
    """Completion rate, response and resolution times, per technician and category, repeat faults (30 days by
    default)."""
    until = until or now
    since = since or until - timedelta(days=30)
    if since.tzinfo is None or until.tzinfo is None:
        raise TicketError("give since and until with a time zone (e.g. 2026-03-01T00:00:00+08:00)", status=422)
    condition = services.visible(scope, user)
    if site_id is not None:
        condition = condition & (Ticket.site_id == site_id)
    return ticket_stats(session, condition, since, until)


# --- technicians and site settings ---


def _site_in_scope(scope: Scope, site_id: int) -> None:
    if not scope.all_sites and site_id not in scope.site_ids:
        raise TicketError(f"site {site_id} not found", status=404)


@router.get("/technicians", dependencies=[Depends(require_roles(*STAFF))])
def list_technicians(
    session: SessionDep, scope: ScopeDep, now: NowDep, site_id: int | None = None
) -> list[schemas.TechnicianOut]:
    stmt = select(Technician).where(scope.where(Technician)).order_by(Technician.id)
    if site_id is not None:
        stmt = stmt.where(Technician.site_id == site_id)
    techs = session.scalars(stmt).all()
    loads = open_load(session, [t.id for t in techs])
    shifts = on_shift(session, [t.id for t in techs], now)
    return [
        schemas.TechnicianOut.model_validate(t).model_copy(
            update={"open_tickets": loads[t.id], "on_shift": t.id in shifts}
        )
        for t in techs
    ]


@router.put("/technicians", dependencies=[Depends(require_roles(*MANAGERS))])
def put_technician(body: schemas.TechnicianIn, session: SessionDep, scope: ScopeDep) -> schemas.TechnicianOut:
    """Create or update a technician's profile at a site: skills, zones, on duty."""
    _site_in_scope(scope, body.site_id)
    user = session.get(User, body.user_id)
    if user is None:
        raise TicketError(f"user {body.user_id} not found", status=404)
    tech = upsert_technician(
        session, user, body.site_id, skills=body.skills, zone_building_ids=body.zone_building_ids, on_duty=body.on_duty
    )
    return schemas.TechnicianOut.model_validate(tech)


def _technician(session: Session, scope: Scope, technician_id: int) -> Technician:
    return scope.get(session, Technician, technician_id)


@router.post("/technicians/{technician_id}/duty", dependencies=[Depends(require_roles(*WORKERS))])
def set_duty(
    technician_id: int, body: schemas.DutyIn, session: SessionDep, scope: ScopeDep, user: CurrentUser
) -> schemas.TechnicianOut:
    """On or off duty: technicians switch themselves, managers anyone of their sites."""
    tech = _technician(session, scope, technician_id)
    if user.role is Role.TECHNICIAN and tech.user_id != user.id:
        raise TicketError("technicians switch only their own duty", status=403)
    tech.on_duty = body.on_duty
    return schemas.TechnicianOut.model_validate(tech)


@router.post("/technicians/{technician_id}/location", dependencies=[Depends(require_roles(*WORKERS))])
def post_location(
    technician_id: int, body: schemas.LocationIn, session: SessionDep, scope: ScopeDep, user: CurrentUser, now: NowDep
) -> schemas.TechnicianOut:
    """Last known location (a building of the site): dispatch prefers technicians already there."""
    tech = _technician(session, scope, technician_id)
    if user.role is Role.TECHNICIAN and tech.user_id != user.id:
        raise TicketError("technicians report only their own location", status=403)
    set_location(session, tech, body.building_id, now)
    return schemas.TechnicianOut.model_validate(tech)


@router.post(
    "/technicians/{technician_id}/shifts",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_roles(*MANAGERS))],
)
def post_shift(technician_id: int, body: schemas.ShiftIn, session: SessionDep, scope: ScopeDep) -> dict[str, Any]:
    tech = _technician(session, scope, technician_id)
    if body.starts_at.tzinfo is None or body.ends_at.tzinfo is None:
        raise TicketError("give shift times with a time zone (e.g. 2026-03-01T08:00:00+08:00)", status=422)
    shift = add_shift(session, tech, body.starts_at, body.ends_at)
    return {"id": shift.id, "technician_id": tech.id, "starts_at": shift.starts_at, "ends_at": shift.ends_at}


@router.put("/sla-policies", dependencies=[Depends(require_roles(Role.ADMIN))])
def put_sla_policy(body: schemas.SlaPolicyIn, session: SessionDep, scope: ScopeDep) -> dict[str, Any]:
    """Create or replace the targets for (site, category, priority); tickets opened afterwards use them."""
    if body.site_id is None and not scope.all_sites:
        raise TicketError("hub-wide policies (no site_id) need an admin with every site", status=403)
    if body.site_id is not None:
        _site_in_scope(scope, body.site_id)
    if body.resolution_min < body.response_min:
        raise TicketError("the resolution target cannot be shorter than the response target", status=422)
    category = body.category.value if body.category else None
    row = session.scalars(
        select(SlaPolicy).where(
            SlaPolicy.priority == body.priority,
            SlaPolicy.site_id.is_(None) if body.site_id is None else SlaPolicy.site_id == body.site_id,
            SlaPolicy.category.is_(None) if category is None else SlaPolicy.category == category,
        )
    ).first()
    if row is None:
        row = SlaPolicy(site_id=body.site_id, category=category, priority=body.priority)
        session.add(row)
    values = body.model_dump(exclude={"site_id", "category", "priority"})
    for key, value in values.items():
        setattr(row, key, value)
    session.flush()
    return {"id": row.id, "site_id": body.site_id, "category": category, "priority": body.priority, **values}


@router.put("/sites/{site_id}/settings", dependencies=[Depends(require_roles(Role.ADMIN))])
def put_site_settings(
    site_id: int, body: schemas.SiteSettingsIn, session: SessionDep, scope: ScopeDep
) -> dict[str, Any]:
    """Grab mode, accept timeout, business hours, and who escalations go to."""
    _site_in_scope(scope, site_id)
    if body.business_days:
        try:
            BusinessHours(frozenset(body.business_days), body.business_start_min, body.business_end_min)
        except ValueError as exc:
            raise TicketError(str(exc), status=422) from None
        if not set(body.business_days) <= set(range(1, 8)):
            raise TicketError("business_days are ISO weekdays, 1 (Monday) to 7 (Sunday)", status=422)
    for user_id in (body.team_lead_id, body.manager_id):  # escalations carry the site's tickets to them
        if user_id is None:
            continue
        member = session.get(User, user_id)
        reached = reach(session, member) if member is not None and member.role is not Role.OWNER else None
        if reached is None or not (reached.all_sites or site_id in reached.site_ids):
            raise TicketError(f"user {user_id} is not staff of site {site_id}", status=422)
    row = session.scalars(select(TicketSiteSettings).where(TicketSiteSettings.site_id == site_id)).first()
    if row is None:
        row = TicketSiteSettings(site_id=site_id)
        session.add(row)
    for key, value in body.model_dump().items():
        setattr(row, key, value)
    session.flush()
    return {"site_id": site_id, **body.model_dump()}


# --- one ticket ---


@router.get("/{ticket_id}", dependencies=[Depends(require_roles(*EVERYONE))])
def get_ticket(ticket: TicketDep, session: SessionDep, now: NowDep) -> schemas.TicketDetailOut:
    """The ticket with its SLA clocks, assignments (with dispatch scores), history, comments, items, photos."""
    return detail_out(session, ticket, now)


Action = Callable[[Session, Ticket, User, datetime], object]


def _act(session: Session, ticket: Ticket, user: User, now: datetime, action: Action) -> schemas.TicketDetailOut:
    action(session, ticket, user, now)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/assign", dependencies=[Depends(require_roles(*MANAGERS))])
def assign(
    body: schemas.AssignIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    """Dispatch by hand (override): the score is still stored on the assignment."""
    services.assign_manually(session, ticket, user, body.technician_id, now)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/accept", dependencies=[Depends(require_roles(*WORKERS))])
def accept(ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep) -> schemas.TicketDetailOut:
    return _act(session, ticket, user, now, services.accept)


@router.post("/{ticket_id}/grab", dependencies=[Depends(require_roles(*WORKERS))])
def grab(ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep) -> schemas.TicketDetailOut:
    """抢单: first to grab an offered ticket gets it."""
    return _act(session, ticket, user, now, services.grab)


@router.post("/{ticket_id}/decline", dependencies=[Depends(require_roles(*WORKERS))])
def decline(
    body: schemas.ReasonIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    services.decline(session, ticket, user, body.reason, now)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/arrive", dependencies=[Depends(require_roles(*WORKERS))])
def arrive(ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep) -> schemas.TicketDetailOut:
    """Check-in on site."""
    return _act(session, ticket, user, now, services.arrive)


@router.post("/{ticket_id}/start", dependencies=[Depends(require_roles(*WORKERS))])
def start(ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep) -> schemas.TicketDetailOut:
    return _act(session, ticket, user, now, services.start)


@router.post("/{ticket_id}/complete", dependencies=[Depends(require_roles(*WORKERS))])
def complete(
    body: schemas.CompleteIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    services.complete(session, ticket, user, now, note=body.note, chargeable=body.chargeable)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/follow-up", dependencies=[Depends(require_roles(*MANAGERS))])
def follow_up(
    body: schemas.NoteIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    """回访: what the owner said when called back."""
    services.follow_up(session, ticket, user, body.note, now)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/close", dependencies=[Depends(require_roles(*MANAGERS))])
def close(
    body: schemas.NoteIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    services.close(session, ticket, user, now, body.note)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/reopen", dependencies=[Depends(require_roles(*MANAGERS, Role.OWNER))])
def reopen(
    body: schemas.ReasonIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    services.reopen(session, ticket, user, body.reason, now)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/cancel", dependencies=[Depends(require_roles(*MANAGERS, Role.OWNER))])
def cancel(
    body: schemas.ReasonIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    services.cancel(session, ticket, user, body.reason, now)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/wait-for-owner", dependencies=[Depends(require_roles(*WORKERS))])
def wait_for_owner(
    body: schemas.ReasonIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.TicketDetailOut:
    """Pause the SLA clocks until the owner is ready (the owner is told why)."""
    services.wait_for_owner(session, ticket, user, body.reason, now)
    return detail_out(session, ticket, now)


@router.post("/{ticket_id}/resume", dependencies=[Depends(require_roles(*WORKERS, Role.OWNER))])
def resume(ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep) -> schemas.TicketDetailOut:
    return _act(session, ticket, user, now, services.resume)


@router.post(
    "/{ticket_id}/comments", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(*EVERYONE))]
)
def comment(
    body: schemas.CommentIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.CommentOut:
    return schemas.CommentOut.model_validate(services.add_comment(session, ticket, user, body.body, now))


@router.post("/{ticket_id}/items", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(*WORKERS))])
def add_item(
    body: schemas.ItemIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.ItemOut:
    """Materials used or labour (quantity x unit price in fen)."""
    return schemas.ItemOut.model_validate(services.add_item(session, ticket, user, now=now, **body.model_dump()))


@router.post(
    "/{ticket_id}/photos", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(*EVERYONE))]
)
def upload_photo(
    photo: Annotated[UploadFile, File()],
    ticket: LockedDep,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    now: NowDep,
) -> schemas.AttachmentOut:
    """A JPEG, PNG or WebP photo (checked by its content, not its name)."""
    data = photo.file.read(store.max_bytes + 1)
    row = services.attach_photo(session, store, ticket, user, photo.filename or "photo", data, now)
    return schemas.AttachmentOut.model_validate(row)


@router.get("/{ticket_id}/photos/{attachment_id}", dependencies=[Depends(require_roles(*EVERYONE))])
def download_photo(attachment_id: int, ticket: TicketDep, session: SessionDep, store: StoreDep) -> FileResponse:
    row = session.scalars(
        select(Attachment).where(Attachment.id == attachment_id, Attachment.ticket_id == ticket.id)
    ).first()
    if row is None or not store.path(row).is_file():
        raise TicketError(f"photo {attachment_id} of ticket {ticket.id} not found", status=404)
    return FileResponse(store.path(row), media_type=row.content_type, headers={"Cache-Control": "private"})


@router.post(
    "/{ticket_id}/rating", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(Role.OWNER))]
)
def rate(
    body: schemas.RatingIn, ticket: LockedDep, session: SessionDep, user: CurrentUser, now: NowDep
) -> schemas.RatingOut:
    """The reporting owner rates speed, attitude and quality, once, when the ticket is done or closed."""
    return schemas.RatingOut.model_validate(services.rate(session, ticket, user, now=now, **body.model_dump()))
