"""Events: what happened to a ticket, for the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias, TypedDict

from shared.tickets.model import AgentRef, Escalation, HandoffResult, Owner, Task
from shared.tickets.roles import Role, TicketKind

# --------------------------------------------------------------------------------------------
# Events: what happened, for the outbox. Each says which ticket, at which version, when, by whom.


@dataclass(frozen=True, kw_only=True)
class _EventBase:
    ticket_id: str
    version: int
    at: datetime
    by: AgentRef


class Stamp(TypedDict):
    ticket_id: str
    version: int
    at: datetime
    by: AgentRef


@dataclass(frozen=True, kw_only=True)
class TicketOpened(_EventBase):
    kind: TicketKind
    role: Role


@dataclass(frozen=True, kw_only=True)
class ContactAttached(_EventBase):
    owner: Owner
    reopened: bool  # it was resolved: back with its first handler


@dataclass(frozen=True, kw_only=True)
class TicketClaimed(_EventBase):
    owner: Owner
    handoff_id: str | None  # None: the ticket itself was claimed
    became_first_handler: bool


@dataclass(frozen=True, kw_only=True)
class TicketAssigned(_EventBase):
    owner: Owner
    handoff_id: str | None
    became_first_handler: bool


@dataclass(frozen=True, kw_only=True)
class TicketReplied(_EventBase):
    text: str
    first_response: bool
    promise_by: datetime | None = None  # the next reply promised by then


@dataclass(frozen=True, kw_only=True)
class HandoffRequested(_EventBase):
    handoff_id: str
    role: Role
    task: Task
    first_handler: AgentRef | None  # who tracks it and gets the result


@dataclass(frozen=True, kw_only=True)
class HandoffResultRecorded(_EventBase):
    handoff_id: str
    role: Role
    result: HandoffResult
    first_handler: AgentRef | None


@dataclass(frozen=True, kw_only=True)
class TicketReturnedToFirstHandler(_EventBase):
    owner: Owner  # (first_handler_role, first_handler)


@dataclass(frozen=True, kw_only=True)
class TicketRequeued(_EventBase):
    """Work came back to a ticket nobody had claimed yet: it waits in its role's queue."""

    owner: Owner


@dataclass(frozen=True, kw_only=True)
class TicketResolved(_EventBase):
    summary: str


@dataclass(frozen=True, kw_only=True)
class TicketClosed(_EventBase):
    pass


@dataclass(frozen=True, kw_only=True)
class TicketEscalated(_EventBase):
    escalation: Escalation
    first_handler: AgentRef | None


@dataclass(frozen=True, kw_only=True)
class FirstHandlerReassigned(_EventBase):
    previous: AgentRef
    new: AgentRef
    reason: str
    owner: Owner


@dataclass(frozen=True, kw_only=True)
class ChaseOpened(_EventBase):
    pass


@dataclass(frozen=True, kw_only=True)
class ChaseTakenOver(_EventBase):
    previous: AgentRef | None
    new: AgentRef
    owner: Owner


@dataclass(frozen=True, kw_only=True)
class FlowStepped(_EventBase):
    """The ticket moved on its flow: by an answer, or by a handoff's result (its outcome)."""

    flow: str  # "KIND vN"
    left: str
    answer: str
    entered: str


Event: TypeAlias = (
    TicketOpened
    | ChaseOpened
    | ChaseTakenOver
    | ContactAttached
    | TicketClaimed
    | TicketAssigned
    | TicketReplied
    | HandoffRequested
    | HandoffResultRecorded
    | TicketReturnedToFirstHandler
    | TicketRequeued
    | TicketResolved
    | TicketClosed
    | TicketEscalated
    | FirstHandlerReassigned
    | FlowStepped
)

# Builds a command's events once the new version is known.
EventFactory: TypeAlias = Callable[[Stamp], tuple[Event, ...]]
