"""Warehouse and finance operations with exactly-once effects (issue 5, SPEC §7, §10).

The machinery every role's operations share. An operation (`RefundArgs`, `ShipArgs`, ...) is a
typed result of a handoff; each role keeps its own in its room, as a table keyed by argument
type (`services/finance/operations.py`: `OPERATIONS = {RefundArgs: refund, ...}`), and its
worker alone runs them (`operation_handler`), inside the runtime's one transaction, with the
ticket row already locked (`load_ticket ... FOR NO KEY UPDATE`):

1. the aggregate's own rules first, as a dry run of recording the handoff's result (the handoff
   exists and is open, the actor may record it, the expected version): `not_owner` and friends;
2. the operation's ledger rules (the room's `rules.py`), against the ledger rows, locked
   (`FOR UPDATE` on the order's payment total and on the stock rows, in sku order: no deadlock
   between replicas);
3. the ledger rows, then the handoff's result (done, with the refund id, tracking number...)
   through the aggregate, which returns it to the first handler (§5.5).

Exactly once: the inbox makes a redelivered or re-published command a no-op; a *new*
command for a handoff that already has its result is refused by the aggregate
(`a_result_is_recorded_once`); and the database refuses a second ledger row for the same
handoff (UNIQUE `handoff_id`) whatever the code does.

Steps that do not finish a task (pick-up arranged, return tracked, interception requested or
confirmed, a supervisor's payout approval) write their ledger row and a history entry; the
handoff stays open, the ticket's version does not move.

**Violations.** A broken rule is a rejection with its code and a message naming the figures
(`refund_exceeds_paid: paid 59.00, refunded 40.00, asked 30.00`): nothing is written, neither
ledger nor ticket nor history (history records accepted commands only), and the staff member
sees it at once (CLI exit 1). The first handler must also learn it (issue 5): a command sent with
`return_on_violation` (CLI `--return-on-violation`) records the handoff's result as `failed`
with `{"violation": code, "reason": message}`, which returns to the first handler exactly like
any result; the ledger is still untouched. It is opt-in, not the default, because most
violations are the staff member's typo (59.00 typed 95.00), which they should simply correct;
a task that cannot be done as asked (the first handler asked for more than was paid) is returned
with the flag. The database constraints (0004_ledgers.sql) back every rule; if one ever fires,
the command is rejected with `ledger_constraint`, never dead-lettered and never half-applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import structlog
from pydantic import ValidationError

from shared.agents.identity import SessionRefused
from shared.db import Connection
from shared.messaging.runtime import Handler, Incoming, Outcome, Transaction
from shared.tickets import Accepted, Actor, Handoff, Rejected, Ticket, decide
from shared.tickets import commands as domain
from shared.tickets.contracts import (
    CommandReply,
    OperationArgs,
    OperationCommand,
    Order,
)
from shared.tickets.desk import UnknownReference, acting, answer, commit, reject
from shared.tickets.model import Outcome as ResultOutcome
from shared.tickets.roles import Role
from shared.tickets.store import append_history, load_ticket_with

log = structlog.get_logger(__name__)

A = TypeVar("A", bound=OperationArgs)
# One operation: checks its rules against the ledger (locked) and writes it, or says which broke.
OperationFn = Callable[["Op", A], Awaitable["Effect | Violation"]]
Operation = Callable[["Op"], Awaitable["Effect | Violation"]]
# A role's operations, keyed by argument type (cosmicpython's COMMAND_HANDLERS).
Operations = Mapping[type[OperationArgs], OperationFn[Any]]


@dataclass(frozen=True)
class Violation:
    """A broken ledger rule: its code and a message naming the figures."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Effect:
    """What an operation did: a line for the staff, the result data for the first handler, and
    whether it finishes the handoff (False: a step; the task stays open)."""

    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    finishes: bool = True


def order_on_ticket(order: Order | None, ticket_id: str) -> Order | Violation:
    if order is not None:
        return order
    return Violation("no_order", f"ticket {ticket_id} has no order")


# --------------------------------------------------------------------------------------------
# The adapters: read the ledger (locked), check, write.


@dataclass(frozen=True)
class Op:
    """One operation in its transaction: who, when, which ticket and handoff."""

    conn: Connection
    ticket: Ticket
    handoff: Handoff
    actor: Actor
    at: datetime
    message_id: str
    order_id: str | None
    order: Order | None
    customer_id: str


# The ticket row's columns an operation reads beside the aggregate (`load_op`).
OP_COLUMNS = ("order_id", "order_data", "customer_id")


def load_op(
    conn: Connection,
    ticket: Ticket,
    row: asyncpg.Record,
    handoff: Handoff,
    actor: Actor,
    at: datetime,
    message_id: str,
) -> Op:
    """The operation's view of the ticket, from its row as loaded with `OP_COLUMNS`."""
    order = None
    if row["order_data"] is not None:
        try:
            order = Order.model_validate(row["order_data"])
        except ValidationError:
            order = None
    return Op(
        conn, ticket, handoff, actor, at, message_id, row["order_id"], order, row["customer_id"]
    )


async def apply(op: Op, run: Operation) -> Effect | Violation:
    """Check `args` against the ledger and write it; a Violation writes nothing."""
    # A savepoint: a violation (or a constraint firing) undoes whatever was written on the
    # way, e.g. the order's payment total created for the check. Never released: COMMIT does
    # that, and RELEASE SAVEPOINT would be one more round trip per operation.
    await op.conn.execute("SAVEPOINT operation")
    try:
        outcome = await run(op)
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError) as exc:
        outcome = Violation("ledger_constraint", f"the ledger refused it: {exc.constraint_name}")
    if isinstance(outcome, Violation):
        await op.conn.execute("ROLLBACK TO SAVEPOINT operation")
    return outcome


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


# --------------------------------------------------------------------------------------------
# The handler a role's worker runs for its operation messages.


def operation_handler(role: Role, operations: Operations) -> Handler:
    """Ledger row and handoff result in one transaction, or a rejection writing nothing.

    The aggregate's rules come first (a dry run of recording the result: who may, which
    handoff, is it still open), then the operation's own (`apply`).
    """

    async def apply_operation(tx: Transaction, msg: Incoming[OperationCommand]) -> Outcome:
        cmd = msg.payload
        args: OperationArgs = cmd.args  # type: ignore[attr-defined]  # each role's subclass has it
        try:
            actor = await acting(tx, msg, cmd.actor_id)
        except (UnknownReference, SessionRefused) as exc:
            return reject(tx, cmd.ticket_id, exc.code, str(exc), None)
        loaded = await load_ticket_with(tx.conn, cmd.ticket_id, OP_COLUMNS)
        if loaded is None:
            return reject(tx, cmd.ticket_id, "unknown_ticket", "no such ticket", None)
        ticket, row = loaded

        def result(outcome: ResultOutcome, data: dict[str, object]) -> domain.RecordResult:
            return domain.RecordResult(
                actor=actor,
                at=tx.now,
                message_id=tx.cause.message_id,
                expected_version=cmd.expected_version,
                handoff_id=args.handoff_id,
                outcome=outcome,
                data=data,
            )

        allowed = decide(ticket, result("done", {}))
        if isinstance(allowed, Rejected):
            log.info(
                "operation_refused",
                ticket_id=ticket.id,
                agent_id=actor.id,
                operation=args.command,
                code=allowed.code.value,
            )
            return reject(tx, ticket.id, allowed.code.value, allowed.message, ticket)
        handoff = ticket.handoff(args.handoff_id)
        assert handoff is not None  # the dry run checked it
        if handoff.role is not role:
            return reject(
                tx,
                ticket.id,
                "invalid_command",
                f"handoff {handoff.id} is a {handoff.role} task; {args.command} is {role} work",
                ticket,
            )
        op = load_op(tx.conn, ticket, row, handoff, actor, tx.now, tx.cause.message_id)
        fn = operations[type(args)]
        done = await apply(op, lambda op: fn(op, args))
        if isinstance(done, Violation):
            # Ids and codes only: a violation's message may name people.
            log.info(
                "operation_refused",
                ticket_id=ticket.id,
                agent_id=actor.id,
                operation=args.command,
                code=done.code,
            )
            return await _violated(tx, ticket, handoff, args, done, result)
        if not done.finishes:  # a step: the task stays open
            await append_history(
                tx.conn,
                ticket_id=ticket.id,
                at=tx.now,
                actor_id=actor.id,
                actor_name=actor.name,
                action=domain.STEP_RECORDED,
                message_id=tx.cause.message_id,
                detail={"handoff_id": handoff.id, "operation": args.command, **done.data},
            )
            answer(tx, ticket, done.summary, done.data)
            return Outcome(f"step:{args.command}", ticket.id)
        decision = decide(ticket, result("done", {"operation": args.command, **done.data}))
        assert isinstance(decision, Accepted)  # the same checks as the dry run
        await commit(tx, decision)
        new = decision.ticket
        message = f"{done.summary}; result of {handoff.id} recorded; owner: {new.owner}"
        answer(tx, new, message, done.data)
        return Outcome(f"done:{args.command}", new.id)

    return apply_operation


async def _violated(
    tx: Transaction,
    ticket: Ticket,
    handoff: Handoff,
    args: OperationArgs,
    done: Violation,
    result: Callable[[ResultOutcome, dict[str, object]], domain.RecordResult],
) -> Outcome:
    # A refused approval is the approver's matter, never the task's result.
    if not args.return_on_violation or not args.returns_on_violation:
        return reject(tx, ticket.id, done.code, done.message, ticket)
    failed = decide(
        ticket,
        result("failed", {"operation": args.command, "violation": done.code, "reason": str(done)}),
    )
    assert isinstance(failed, Accepted)  # the same checks as the dry run
    await commit(tx, failed)
    tx.reply = CommandReply(
        ticket_id=ticket.id,
        accepted=False,
        code=done.code,
        message=f"{done.message}; handoff {handoff.id} returned to the first handler "
        "as failed with this reason",
        version=failed.ticket.version,
        owner=str(failed.ticket.owner),
    )
    return Outcome(f"rejected:{done.code}", ticket.id)
