"""Reads over request/reply: what the agent CLI asks the workers instead of opening the database
(issue #12: the agents' CLI holds no database credentials).

Each is signed like a command (the session token in the `authorization` header) and answered
from the one read model (`shared.tickets.read_model`) by `shared.tickets.reads`, masked; the
answer is a `ReadReply`.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from pydantic import Field

from shared.messaging.envelope import Contract
from shared.tickets.roles import Role


class ReadRequest(Contract):
    """What every read shares: who asks (their session signs the request)."""

    actor_id: str = Field(min_length=1, description="The agent asking (roster id)")


class ListTickets(ReadRequest):
    """A page of tickets, newest first, matching every filter given (`ticketq tickets list`)."""

    TYPE: ClassVar[str] = "read.tickets"

    role: Role | None = None
    owner: str | None = None
    status: str | None = None
    waiting_for: str | None = None
    absent_first_handler: bool = False
    due_within_seconds: int | None = Field(None, ge=1)
    breached: bool = False
    include_closed: bool = False
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class ShowTicket(ReadRequest):
    """One ticket, masked: owner, first handler, clocks, flow, handoffs, contacts, history."""

    TYPE: ClassVar[str] = "read.ticket"

    ticket_id: str = Field(min_length=1)


class ListTasks(ReadRequest):
    """The handoffs waiting for a role (its staff and supervisors may ask)."""

    TYPE: ClassVar[str] = "read.tasks"

    role: Role


class ListAgents(ReadRequest):
    """The roster with presence, shifts and load (`ticketq agent list`)."""

    TYPE: ClassVar[str] = "read.agents"

    role: Role | None = None


class ShowCalendarDay(ReadRequest):
    """One shop day's staffed hours per role (`ticketq calendar show`); no day: today."""

    TYPE: ClassVar[str] = "read.calendar_day"

    day: date | None = None
    role: Role | None = None


class ShowStock(ReadRequest):
    """Stock levels (warehouse staff and supervisors)."""

    TYPE: ClassVar[str] = "read.stock"

    sku: str | None = Field(None, min_length=1)


class ShowLedger(ReadRequest):
    """Finance's ledger (finance staff and supervisors)."""

    TYPE: ClassVar[str] = "read.ledger"

    ticket_id: str | None = Field(None, min_length=1)


class ReadReply(Contract):
    """What a read found, masked, as plain JSON data; or why it was refused."""

    TYPE: ClassVar[str] = "read.reply"

    accepted: bool
    code: str | None = Field(
        None,
        description="Refusal code: not_signed_in, session_expired, actor_mismatch, "
        "unknown_agent, unknown_ticket, not_allowed",
    )
    message: str = ""
    data: Any = Field(None, description="The view asked for (times ISO 8601, amounts text)")
