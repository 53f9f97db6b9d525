"""The ticket state machine: which action may move a ticket from which state, and to where.

One table, so the API, the pages and the timer worker cannot disagree; a refused action names the ticket's
current state and what it allows instead.
"""

from __future__ import annotations

from enum import StrEnum

from cloud.tickets.models import TicketState as S


class Action(StrEnum):
    ASSIGN = "assign"
    ACCEPT = "accept"
    DECLINE = "decline"
    TIME_OUT = "time_out"
    GRAB = "grab"
    ARRIVE = "arrive"
    START = "start"
    FAULT_CLEARED = "fault_cleared"
    REDISPATCH = "redispatch"
    COMPLETE = "complete"
    FOLLOW_UP = "follow_up"
    CLOSE = "close"
    REOPEN = "reopen"
    CANCEL = "cancel"


TRANSITIONS: dict[Action, tuple[frozenset[S], S]] = {
    Action.ASSIGN: (frozenset({S.NEW, S.ASSIGNED, S.ACCEPTED}), S.ASSIGNED),
    Action.ACCEPT: (frozenset({S.ASSIGNED}), S.ACCEPTED),
    Action.DECLINE: (frozenset({S.ASSIGNED}), S.NEW),
    Action.TIME_OUT: (frozenset({S.ASSIGNED}), S.NEW),
    Action.GRAB: (frozenset({S.NEW}), S.ACCEPTED),
    Action.ARRIVE: (frozenset({S.ACCEPTED}), S.IN_PROGRESS),
    Action.START: (frozenset({S.ACCEPTED, S.VERIFY}), S.IN_PROGRESS),
    Action.FAULT_CLEARED: (frozenset({S.NEW, S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS}), S.VERIFY),
    Action.REDISPATCH: (frozenset({S.VERIFY}), S.NEW),
    Action.COMPLETE: (frozenset({S.IN_PROGRESS, S.VERIFY}), S.DONE),
    Action.FOLLOW_UP: (frozenset({S.DONE}), S.FOLLOW_UP),
    Action.CLOSE: (frozenset({S.DONE, S.FOLLOW_UP}), S.CLOSED),
    Action.REOPEN: (frozenset({S.DONE, S.FOLLOW_UP, S.CLOSED}), S.NEW),
    Action.CANCEL: (frozenset({S.NEW, S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS, S.VERIFY}), S.CANCELLED),
}

LABELS: dict[S, str] = {
    S.NEW: "待受理",
    S.ASSIGNED: "已派单",
    S.ACCEPTED: "已接单",
    S.IN_PROGRESS: "处理中",
    S.VERIFY: "待确认",
    S.DONE: "已完成",
    S.FOLLOW_UP: "回访",
    S.CLOSED: "已关闭",
    S.CANCELLED: "已取消",
}


class TicketError(Exception):
    """A request the ticket rules refuse, with the HTTP status the API answers and a message saying what to fix."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class InvalidTransition(TicketError):
    """An action the ticket's current state does not allow."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=409)


def allowed_actions(state: S) -> list[Action]:
    return [action for action, (sources, _) in TRANSITIONS.items() if state in sources]


def target(action: Action, state: S, ticket_id: int | None = None) -> S:
    """The state ``action`` moves a ticket in ``state`` to; InvalidTransition if it may not."""
    sources, to = TRANSITIONS[action]
    if state in sources:
        return to
    which = f"ticket {ticket_id}" if ticket_id is not None else "the ticket"
    allowed = ", ".join(a.value for a in allowed_actions(state)) or "nothing (it is final)"
    needs = ", ".join(sorted(s.value for s in sources))
    raise InvalidTransition(
        f"cannot {action.value}: {which} is {state.value} ({LABELS[state]}); {action.value} needs one of: {needs}; "
        f"from {state.value} you may: {allowed}"
    )
