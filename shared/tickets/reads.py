"""The workers' side of the agent CLI's reads (`shared.tickets.read_requests`): who may read
what, and the answer from the one read model, masked.

Any signed-in agent may list and show tickets (masked), the roster and the calendar; a role's
tasks are for its staff, stock for the warehouse's, the ledger for finance's; supervisors may
read everything. A read changes nothing, so its answer is not kept for a re-sent request (the
runtime stores `kept_reply` instead of the view): asking again is harmless.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import structlog

from shared import tickets as domain
from shared.agents.identity import SessionRefused
from shared.cli.output import jsonable
from shared.flows.model import FlowBook
from shared.messaging.envelope import Contract
from shared.messaging.runtime import Handler, Incoming, Outcome, Transaction
from shared.tickets.desk import NO_FLOWS, UnknownReference, acting
from shared.tickets.read_model import (
    UnknownAgent,
    calendar_day,
    finance_ledger,
    list_agents,
    list_tickets,
    masked_view,
    open_tasks,
    stock_levels,
    ticket_view,
)
from shared.tickets.read_requests import (
    ListAgents,
    ListTasks,
    ListTickets,
    ReadReply,
    ReadRequest,
    ShowCalendarDay,
    ShowLedger,
    ShowStock,
    ShowTicket,
)
from shared.tickets.roles import Role

log = structlog.get_logger(__name__)

R = TypeVar("R", bound=ReadRequest)

NOT_ALLOWED = "not_allowed"
# What a re-sent read (same message id) is told: the view itself is never kept.
NOT_KEPT = ReadReply(
    accepted=False, code="read_not_kept", message="a read is answered once: ask again"
)


class NotFound(LookupError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def reader_role(request: ReadRequest) -> Role | None:
    """The role whose staff may make `request` (supervisors too); None: any agent."""
    match request:
        case ShowStock():
            return Role.WAREHOUSE
        case ShowLedger():
            return Role.FINANCE
        case ListTasks():
            return request.role
    return None


def may_read(actor: domain.Actor, request: ReadRequest) -> str | None:
    """Why `actor` may not make `request`, or None if they may."""
    role = reader_role(request)
    if role is None or role in actor.roles or domain.is_supervisor(actor):
        return None
    return f"{request.TYPE} is for {role.value} staff and supervisors; {actor.id} is neither"


def read_handler(query: Callable[[Transaction, R], Awaitable[Any]]) -> Handler:
    """A handler answering a read: who asks (their session), whether they may, the view."""

    async def handle(tx: Transaction, msg: Incoming[R]) -> Outcome:
        asked = msg.payload
        try:
            actor = await acting(tx, msg, asked.actor_id)
            if (why := may_read(actor, asked)) is not None:
                log.warning("read_refused", type=asked.TYPE, agent_id=actor.id, code=NOT_ALLOWED)
                raise NotFound(NOT_ALLOWED, why)
            data = jsonable(await query(tx, asked))
        except (UnknownReference, SessionRefused, NotFound) as exc:
            tx.reply = ReadReply(accepted=False, code=exc.code, message=str(exc))
            return Outcome(f"refused:{exc.code}", getattr(asked, "ticket_id", None))
        tx.reply = ReadReply(accepted=True, data=data)
        tx.kept_reply = NOT_KEPT
        return Outcome("read", getattr(asked, "ticket_id", None))

    return handle


async def _tickets(tx: Transaction, asked: ListTickets) -> dict[str, Any]:
    within = asked.due_within_seconds
    try:
        page = await list_tickets(
            tx.conn,
            role=asked.role.value if asked.role else None,
            owner=asked.owner,
            status=asked.status,
            waiting_for=asked.waiting_for,
            absent_first_handler=asked.absent_first_handler,
            due_within=None if within is None else timedelta(seconds=within),
            breached=asked.breached,
            include_closed=asked.include_closed,
            limit=asked.limit,
            offset=asked.offset,
            now=tx.now,
        )
    except UnknownAgent as exc:
        raise NotFound("unknown_agent", str(exc)) from None
    return {"rows": page.rows, "total": page.total, "offset": page.offset}


async def _ticket(tx: Transaction, asked: ShowTicket, *, flows: FlowBook) -> dict[str, Any]:
    view = await ticket_view(tx.conn, asked.ticket_id, flows, now=tx.now)
    if view is None:
        raise NotFound("unknown_ticket", f"no ticket {asked.ticket_id!r}")
    return masked_view(view)


async def _tasks(tx: Transaction, asked: ListTasks) -> list[dict[str, Any]]:
    return await open_tasks(tx.conn, asked.role)


async def _agents(tx: Transaction, asked: ListAgents) -> dict[str, Any]:
    role = asked.role.value if asked.role else None
    return {"at": tx.now, "agents": await list_agents(tx.conn, tx.now, role=role)}


async def _calendar(tx: Transaction, asked: ShowCalendarDay) -> dict[str, Any]:
    roles = [asked.role] if asked.role else list(Role)
    return await calendar_day(tx.conn, asked.day, roles, tx.now)


async def _stock(tx: Transaction, asked: ShowStock) -> list[dict[str, Any]]:
    return await stock_levels(tx.conn, asked.sku)


async def _ledger(tx: Transaction, asked: ShowLedger) -> dict[str, list[dict[str, Any]]]:
    return await finance_ledger(tx.conn, asked.ticket_id)


def desk_reads(flows: FlowBook = NO_FLOWS) -> dict[type[Contract], Handler]:
    """The reads a ticket desk answers on the `desk` queue."""
    return {
        ListTickets: read_handler(_tickets),
        ShowTicket: read_handler(functools.partial(_ticket, flows=flows)),
        ListTasks: read_handler(_tasks),
        ListAgents: read_handler(_agents),
        ShowCalendarDay: read_handler(_calendar),
    }


WAREHOUSE_READS: Mapping[type[Contract], Handler] = {ShowStock: read_handler(_stock)}
FINANCE_READS: Mapping[type[Contract], Handler] = {ShowLedger: read_handler(_ledger)}
