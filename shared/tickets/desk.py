"""The agent desks: what every agent-facing worker does with tickets (SPEC §5).

Each of pre-sale, after-sales, warehouse and finance runs these handlers on its own queue.
Commands from agents are applied through the pure ticket aggregate (`shared.tickets`)
inside the runtime's transaction and answered (request/reply); domain events that move work
between roles become messages: a handoff's task goes to its role's queue, and a ticket whose
handoffs have all returned goes back to its first handler's role.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypedDict

import structlog

from shared import tickets as domain
from shared.agents.desk import ROSTER_HANDLERS
from shared.agents.identity import SESSION_HANDLERS, SessionRefused, acting_agent
from shared.agents.roster import Agent, choose_assignee
from shared.agents.store import load_agent, load_roster
from shared.bootstrap import Background
from shared.clock import Clock
from shared.db import Connection, Pool, xact_lock
from shared.flows.model import FlowBook
from shared.messaging.envelope import Contract
from shared.messaging.runtime import Handler, Incoming, Outcome, Transaction
from shared.tickets import Accepted, Rejected, Ticket, TicketStatus, decide
from shared.tickets.clocks import TimerKind
from shared.tickets.contracts import (
    ClaimArgs,
    CloseArgs,
    CommandReply,
    EscalateArgs,
    FollowUpAttached,
    HandOffArgs,
    HandoffRequested,
    ReassignArgs,
    RecordResultArgs,
    ReplyArgs,
    ResolveArgs,
    RevealTicket,
    StepArgs,
    TakeOverChaseArgs,
    TicketCommand,
    TicketReturned,
    TicketRouted,
)
from shared.tickets.messages import messages_for
from shared.tickets.read_model import ticket_view
from shared.tickets.roles import Role
from shared.tickets.store import (
    load_ticket,
    open_ticket_counts,
    order_facts_of,
    save_decision,
)
from shared.tickets.timing import FIRE_HANDLERS, apply_clocks, flow_timeout
from shared.timers import FireHandler

log = structlog.get_logger(__name__)

ASSIGN_EVERY = 5.0  # seconds between sweeps for tickets that waited (off hours, nobody online)
SWEEP_FLOOR = 0.1  # real seconds at least between two sweeps
NO_FLOWS = FlowBook({})  # a desk built without flows: tickets start on none


class UnknownReference(Exception):
    """A command names an agent who is not on the roster."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def reveal_ticket(
    tx: Transaction, msg: Incoming[RevealTicket], *, flows: FlowBook = NO_FLOWS
) -> Outcome:
    """Supervisors only; the reveal is recorded in the same transaction as the answer."""
    asked = msg.payload
    try:
        actor = await acting(tx, msg, asked.actor_id)
    except (UnknownReference, SessionRefused) as exc:
        return reject(tx, asked.ticket_id, exc.code, str(exc), None)
    if not domain.is_supervisor(actor):
        log.warning(
            "supervisor_action_refused",
            action="reveal",
            code="supervisor_only",
            ticket_id=asked.ticket_id,
            agent_id=actor.id,
        )
        return reject(
            tx,
            asked.ticket_id,
            "supervisor_only",
            f"only a supervisor sees personal data unmasked; {actor.id} is not one",
            None,
        )
    view = await ticket_view(tx.conn, asked.ticket_id, flows, now=tx.now)
    if view is None:
        return reject(tx, asked.ticket_id, "unknown_ticket", "no such ticket", None)
    await tx.conn.execute(
        "INSERT INTO pii_reveals (agent_id, ticket_id, at) VALUES ($1, $2, $3)",
        actor.id,
        asked.ticket_id,
        tx.now,
    )
    answer = {
        "ticket_id": asked.ticket_id,
        "accepted": True,
        "message": f"revealed to {actor.name} ({actor.id}); recorded",
        "version": view["version"],
    }
    tx.reply = CommandReply(**answer, data=view)
    tx.kept_reply = CommandReply(**answer)  # a re-sent request is told, not shown again
    return Outcome("revealed", asked.ticket_id)


def desk_handlers(role: Role, flows: FlowBook = NO_FLOWS) -> dict[type[Contract], Handler]:
    """What a ticket desk (pre-sale, after-sales) runs: agents' and supervisors' commands
    (tickets, reveals, the roster), new tickets and follow-ups for its role, results coming
    back; after-sales also takes tasks handed to it. Every desk applies commands on any ticket
    (the shared `desk` queue), so `flows` holds every room's flows."""
    handlers: dict[type[Contract], Handler] = {
        TicketCommand: functools.partial(apply_command, flows=flows),
        RevealTicket: functools.partial(reveal_ticket, flows=flows),
        **ROSTER_HANDLERS,
        **SESSION_HANDLERS,
        TicketRouted: functools.partial(ticket_routed, flows=flows),
        FollowUpAttached: follow_up_arrived,
        TicketReturned: ticket_returned,
    }
    if role is Role.AFTERSALES:
        handlers[HandoffRequested] = task_arrived
    return handlers


def desk_timers(flows: FlowBook = NO_FLOWS) -> Mapping[str, FireHandler]:
    """What a ticket desk's timer loop fires: every ticket clock (SPEC §8), whichever desk's
    ticket it is, and its flow's waits; every replica runs one (`shared.tickets.timing`)."""
    return {**FIRE_HANDLERS, TimerKind.FLOW_TIMEOUT: flow_timeout(flows)}


# --- agent commands -------------------------------------------------------------------------


async def apply_command(
    tx: Transaction, msg: Incoming[TicketCommand], *, flows: FlowBook = NO_FLOWS
) -> Outcome:
    sent = msg.payload
    try:  # who asks first: nobody signed in learns nothing, not even whether the ticket exists
        actor = await acting(tx, msg, sent.actor_id)
    except (UnknownReference, SessionRefused) as exc:
        return reject(tx, sent.ticket_id, exc.code, str(exc), None)
    ticket = await load_ticket(tx.conn, sent.ticket_id)
    if ticket is None:
        return reject(tx, sent.ticket_id, "unknown_ticket", "no such ticket", None)
    try:
        command = await _domain_command(tx, sent, ticket, actor, flows)
        decision = decide(ticket, command)
    except UnknownReference as exc:
        return reject(tx, ticket.id, exc.code, str(exc), ticket)
    except ValueError as exc:  # the domain refuses to build it: a blank text, a past deadline
        return reject(tx, ticket.id, "invalid_command", str(exc), ticket)
    if isinstance(decision, Rejected):
        # Ids, codes and the rule only: messages name people.
        log.info(
            "command_refused",
            ticket_id=ticket.id,
            agent_id=actor.id,
            code=decision.code.value,
            rule=decision.rule,
        )
        return reject(tx, ticket.id, decision.code.value, decision.message, ticket)
    await commit(tx, decision)
    new = decision.ticket
    at = f"; now at {new.flow.state}" if new.flow and isinstance(command, domain.Step) else ""
    answer(tx, new, f"{domain.command_name(command)} accepted{at}; owner: {new.owner}")
    return Outcome("accepted", new.id)


def answer(
    tx: Transaction, ticket: Ticket, message: str, data: Mapping[str, Any] | None = None
) -> None:
    """The accepted answer to a command, with the ticket as it is now."""
    tx.reply = CommandReply(
        ticket_id=ticket.id,
        accepted=True,
        message=message,
        version=ticket.version,
        owner=str(ticket.owner),
        data=dict(data or {}),
    )


def reject(
    tx: Transaction, ticket_id: str, code: str, message: str, ticket: Ticket | None
) -> Outcome:
    tx.reply = CommandReply(
        ticket_id=ticket_id,
        accepted=False,
        code=code,
        message=message,
        version=ticket.version if ticket else None,
        owner=str(ticket.owner) if ticket else None,
    )
    return Outcome(f"rejected:{code}", ticket_id)


async def acting(tx: Transaction, msg: Incoming[Any], claimed: str) -> domain.Actor:
    """The agent a command comes from: its session's (never the name it claims), with their
    roles on the roster now. Raises SessionRefused or UnknownReference (off the roster)."""
    session = await acting_agent(tx.conn, msg.credential, claimed, tx.now)
    return _on_roster(session.agent, session.agent_id)  # read with the session: no second trip


async def actor_of(conn: Connection, agent_id: str) -> domain.Actor:
    """The roster's agent as the domain sees them, with their roles."""
    return _on_roster(await load_agent(conn, agent_id), agent_id)


def _on_roster(agent: Agent | None, agent_id: str) -> domain.Actor:
    if agent is None:
        raise UnknownReference("unknown_agent", f"no agent {agent_id!r} on the roster")
    return domain.Actor(agent.id, agent.name, agent.roles)


class _Common(TypedDict):
    actor: domain.Actor
    at: datetime
    message_id: str
    expected_version: int | None


async def _domain_command(
    tx: Transaction, cmd: TicketCommand, ticket: Ticket, actor: domain.Actor, flows: FlowBook
) -> domain.Command:
    common = _Common(
        actor=actor,
        at=tx.now,
        message_id=tx.cause.message_id,
        expected_version=cmd.expected_version,
    )
    args = cmd.args
    match args:
        case ClaimArgs():
            return domain.Claim(**common, flow=flows.newest(ticket.kind))
        case ReplyArgs():
            return domain.Reply(**common, text=args.text, promise_by=args.promise_by)
        case HandOffArgs():
            return domain.HandOff(
                **common,
                handoff_id=ticket.next_handoff_id,
                role=args.role,
                task=domain.Task(args.action, args.data),
            )
        case RecordResultArgs():
            return domain.RecordResult(
                **common, handoff_id=args.handoff_id, outcome=args.outcome, data=args.data
            )
        case ResolveArgs():
            return domain.Resolve(**common, summary=args.summary)
        case CloseArgs():
            return domain.Close(**common)
        case EscalateArgs():
            return domain.Escalate(
                **common,
                category=domain.EscalationCategory(args.category),
                customer_info=args.customer_info,
                problem=args.problem,
                actions_taken=args.actions_taken,
                customer_demand=args.customer_demand,
                responsible=(await actor_of(tx.conn, args.responsible_id)).ref,
                deadline=args.deadline,
            )
        case ReassignArgs():
            return domain.ReassignFirstHandler(
                **common,
                new_first_handler=(await actor_of(tx.conn, args.new_first_handler_id)).ref,
                reason=args.reason,
            )
        case StepArgs():
            return domain.Step(
                **common,
                answer=args.answer,
                note=args.note,
                reason=args.reason,
                flow=flows.of(ticket.flow),
                facts=await order_facts_of(tx.conn, ticket.id),
            )
        case TakeOverChaseArgs():
            return domain.TakeOverChase(
                **common, first_handler_away=await _away(tx, ticket.first_handler)
            )


async def _away(tx: Transaction, agent: domain.AgentRef | None) -> bool:
    """Offline, or off shift now, as the roster says (nobody: away)."""
    if agent is None:
        return True
    roster = await load_roster(tx.conn)
    found = roster.agent(agent.id)
    return found is None or not found.online or not roster.on_shift(found, tx.now)


async def commit(tx: Transaction, accepted: Accepted) -> None:
    """Save the new state and history, arm and cancel its clocks; send the events that move
    work between roles."""
    await save_decision(tx.conn, accepted)
    await apply_clocks(tx.conn, accepted, tx.now)
    for queue, message in messages_for(accepted):
        tx.emit(queue, message, ticket_id=accepted.ticket.id)


# --- arrivals -------------------------------------------------------------------------------


async def ticket_routed(
    tx: Transaction, msg: Incoming[TicketRouted], *, flows: FlowBook = NO_FLOWS
) -> Outcome:
    """A new ticket in this role's queue: give it to an agent now if anyone can take it."""
    routed = msg.payload
    agent_id = await auto_assign(
        tx.conn, routed.ticket_id, routed.role, tx.now, tx.cause.message_id, flows
    )
    return Outcome("assigned" if agent_id else "waiting_for_agent", routed.ticket_id)


async def follow_up_arrived(tx: Transaction, msg: Incoming[FollowUpAttached]) -> Outcome:
    """Intake attached the contact and recorded it; it waits with the ticket's agent."""
    label = "for_first_handler" if msg.payload.agent_id else "waiting_for_agent"
    return Outcome(label, msg.payload.ticket_id)


async def task_arrived(tx: Transaction, msg: Incoming[HandoffRequested]) -> Outcome:
    """A handoff's task waits for this role's staff to take it or record its result."""
    return Outcome("task_waiting", msg.payload.ticket_id)


async def ticket_returned(tx: Transaction, msg: Incoming[TicketReturned]) -> Outcome:
    """Results are back with the first handler; if they are away, it waits for them (§5.7)."""
    returned = msg.payload
    roster = await load_roster(tx.conn)
    agent = roster.agent(returned.first_handler_id)
    if agent is None or not agent.online or not roster.on_shift(agent, tx.now):
        log.warning(
            "first_handler_absent", ticket_id=returned.ticket_id, agent_id=returned.first_handler_id
        )
        return Outcome("waiting_for_absent_first_handler", returned.ticket_id)
    return Outcome("returned_to_first_handler", returned.ticket_id)


# --- auto-assignment (§5.2) -------------------------------------------------------------------


async def auto_assign(
    conn: Connection,
    ticket_id: str,
    role: Role,
    now: datetime,
    message_id: str,
    flows: FlowBook = NO_FLOWS,
) -> str | None:
    """Assign a queued ticket to the least loaded on-shift, online agent of `role`.

    Assignments of a role are serialised by a transaction-scoped advisory lock, so two
    replicas assigning at once both see each other's counts: nobody is over-assigned.
    """
    await xact_lock(conn, f"assign:{role}")
    ticket = await load_ticket(conn, ticket_id)
    if ticket is None or ticket.status is not TicketStatus.QUEUED or ticket.owner.role is not role:
        return None
    roster = await load_roster(conn)
    last = await conn.fetchval("SELECT last_agent_id FROM assignment_cursor WHERE role = $1", role)
    agent = choose_assignee(role, now, roster, await open_ticket_counts(conn, role), last)
    if agent is None:
        return None
    decision = decide(
        ticket,
        domain.Assign(
            actor=domain.SYSTEM,
            at=now,
            message_id=message_id,
            agent=agent.ref,
            flow=flows.newest(ticket.kind),
        ),
    )
    if isinstance(decision, Rejected):
        log.warning("assignment_rejected", ticket_id=ticket_id, code=decision.code)
        return None
    await save_decision(conn, decision)
    await apply_clocks(conn, decision, now)
    await conn.execute(
        """INSERT INTO assignment_cursor (role, last_agent_id) VALUES ($1, $2)
           ON CONFLICT (role) DO UPDATE SET last_agent_id = excluded.last_agent_id""",
        role,
        agent.id,
    )
    return agent.id


def assign_waiting(
    role: Role, *, every: float = ASSIGN_EVERY, flows: FlowBook = NO_FLOWS
) -> Background:
    """A background sweep that assigns tickets which waited (off hours, nobody online)."""

    async def sweep_forever(pool: Pool, clock: Clock) -> None:
        while True:
            try:
                await _sweep(pool, clock, role, flows)
            except Exception:  # the database away: the next sweep tries again
                log.warning("assignment_sweep_failed", role=role.value, exc_info=True)
            await _pause(clock, every)

    return sweep_forever


async def _pause(clock: Clock, every: float) -> None:
    """`every` seconds of shop time: a compressed shop day's clock (bench/shopday.py) gets its
    sweeps at its own pace, though never more than ten a real second; a clock that stands
    still (a test's) is waited on no longer than `every` real seconds."""
    due = clock.now() + timedelta(seconds=every)
    await asyncio.sleep(SWEEP_FLOOR)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(clock.wait_until(due, asyncio.Event()), every)


async def _sweep(pool: Pool, clock: Clock, role: Role, flows: FlowBook) -> None:
    async with pool.acquire() as conn:
        waiting = await conn.fetch(
            """SELECT id FROM tickets WHERE owner_role = $1 AND status = 'queued'
               ORDER BY opened_at LIMIT 50""",
            role.value,
        )
        for row in waiting:
            now = clock.now()
            async with conn.transaction():
                assigned = await auto_assign(
                    conn,
                    row["id"],
                    role,
                    now,
                    f"sweep:{row['id']}:{now.timestamp():.0f}",
                    flows,
                )
            if assigned is None:
                return  # nobody free: the rest wait too
            log.info("assigned_after_wait", ticket_id=row["id"], agent_id=assigned)
