"""Warehouse and finance operations with exactly-once effects (issue 5, SPEC §7, §10).

An operation (`RefundArgs`, `ShipArgs`, ...) is a typed result of a handoff. The desk
(`shared.desk.apply_command`) runs it inside the runtime's one transaction, with the ticket row
already locked (`load_ticket ... FOR UPDATE`):

1. the aggregate's own rules first, as a dry run of recording the handoff's result (the handoff
   exists and is open, the actor may record it, the expected version): `not_owner` and friends;
2. the operation's ledger rules below, against the ledger rows, locked (`FOR UPDATE` on the
   order's payment total and on the stock rows, in sku order: no deadlock between replicas);
3. the ledger rows, then the handoff's result (done, with the refund id, tracking number...)
   through the aggregate, which returns it to the first handler (§5.5).

Exactly once: the inbox makes a redelivered or re-published command a no-op (system-wide for
`ticket.command`); a *new* command for a handoff that already has its result is refused by the
aggregate (`a_result_is_recorded_once`); and the database refuses a second ledger row for the
same handoff (UNIQUE `handoff_id`) whatever the code does.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, get_args

import asyncpg
from pydantic import ValidationError

from shared.config import get_settings
from shared.db import Connection
from shared.domain.roles import Role
from shared.domain.ticket import Actor, Handoff, Ticket, is_supervisor
from shared.models.commands import (
    ApprovePayoutArgs,
    CashbackArgs,
    EffectArgs,
    InterceptArgs,
    InvoiceArgs,
    OrderChangeArgs,
    PayoutArgs,
    PickUpArgs,
    ReceiveReturnArgs,
    RefundArgs,
    ReissuePartArgs,
    ReshipArgs,
    ShipArgs,
    ShipReplacementArgs,
    StockLine,
    TrackReturnArgs,
    UrgeShipmentArgs,
)
from shared.models.tickets import Order

EFFECT_ARGS: tuple[type[Any], ...] = get_args(EffectArgs)

FINANCE_OPERATIONS = (RefundArgs, PayoutArgs, ApprovePayoutArgs, CashbackArgs, InvoiceArgs)


def role_of(args: EffectArgs) -> Role:
    """The role whose handoff an operation completes (an approval is for a finance task)."""
    return Role.FINANCE if isinstance(args, FINANCE_OPERATIONS) else Role.WAREHOUSE


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


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


# --------------------------------------------------------------------------------------------
# The rules, pure: each returns None or the Violation that names it.


def refund_within_paid(paid: Decimal, refunded: Decimal, asked: Decimal) -> Violation | None:
    if refunded + asked <= paid:
        return None
    return Violation(
        "refund_exceeds_paid",
        f"paid {_money(paid)}, refunded {_money(refunded)}, asked {_money(asked)}",
    )


def refund_id_unused(refund_id: str, used_by: str | None) -> Violation | None:
    if used_by is None:
        return None
    return Violation(
        "refund_id_taken", f"refund id {refund_id} is already registered for {used_by}"
    )


def payout_approved(
    amount: Decimal, threshold: Decimal, approved: Decimal | None
) -> Violation | None:
    if approved is None:
        if amount <= threshold:
            return None
        return Violation(
            "payout_needs_approval",
            f"payout {_money(amount)} is above the approval threshold {_money(threshold)} "
            "and no supervisor approval is on record",
        )
    if amount <= approved:
        return None
    return Violation(
        "payout_exceeds_approval", f"approved {_money(approved)}, asked {_money(amount)}"
    )


def invoice_after_receipt(order: Order) -> Violation | None:
    if order.signed_at is not None:
        return None
    return Violation(
        "invoice_before_receipt", f"order {order.id} has no confirmed receipt (not signed for)"
    )


def invoice_within_order(order: Order, amount: Decimal) -> Violation | None:
    if amount <= order.amount:
        return None
    return Violation(
        "invoice_exceeds_order",
        f"order {order.id} amount {_money(order.amount)}, asked {_money(amount)}",
    )


def invoice_is_sent(einvoice_id: str | None, tracking_number: str | None) -> Violation | None:
    if einvoice_id or tracking_number:
        return None
    return Violation(
        "invoice_not_sent", "give the e-invoice id or the tracking number of the paper invoice"
    )


def stock_stays_non_negative(
    on_hand: Mapping[str, int], deltas: Mapping[str, int]
) -> Violation | None:
    short = [
        f"{sku}: on hand {on_hand.get(sku, 0)}, asked {-delta}"
        for sku, delta in sorted(deltas.items())
        if on_hand.get(sku, 0) + delta < 0
    ]
    if not short:
        return None
    return Violation("stock_would_go_negative", "; ".join(short))


def change_before_shipping(order: Order, shipped: bool) -> Violation | None:
    if not shipped and order.shipped_at is None:
        return None
    return Violation(
        "order_already_shipped",
        f"order {order.id} has shipped: redirect or intercept it (warehouse intercept), "
        "then reship",
    )


def reship_after_confirmed_interception(status: str | None) -> Violation | None:
    if status == "confirmed":
        return None
    return Violation(
        "interception_not_confirmed",
        f"the interception is {status or 'not requested'}; reship once the carrier confirms it",
    )


def restock_only_what_passed(inspection: str, restock: Sequence[StockLine]) -> Violation | None:
    if inspection == "passed" or not restock:
        return None
    return Violation(
        "restock_after_failed_inspection",
        f"inspection {inspection}: nothing goes back into stock",
    )


def approval_by_supervisor(actor: Actor) -> Violation | None:
    if is_supervisor(actor):
        return None
    return Violation("approval_needs_supervisor", "only a supervisor approves a payout")


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


async def load_op(
    conn: Connection,
    ticket: Ticket,
    handoff: Handoff,
    actor: Actor,
    at: datetime,
    message_id: str,
) -> Op:
    row = await conn.fetchrow(
        "SELECT order_id, order_data, customer_id FROM tickets WHERE id = $1", ticket.id
    )
    assert row is not None  # the desk loaded (and locked) it
    order = None
    if row["order_data"] is not None:
        try:
            order = Order.model_validate(row["order_data"])
        except ValidationError:
            order = None
    return Op(
        conn, ticket, handoff, actor, at, message_id, row["order_id"], order, row["customer_id"]
    )


async def apply(op: Op, args: EffectArgs) -> Effect | Violation:
    """Check `args` against the ledger and write it; a Violation writes nothing."""
    try:
        # A savepoint: a violation (or a constraint firing) undoes whatever was written on the
        # way, e.g. the order's payment total created for the check.
        async with op.conn.transaction():
            outcome = await _apply(op, args)
            if isinstance(outcome, Violation):
                raise _Undo(outcome)
            return outcome
    except _Undo as undo:
        return undo.violation
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError) as exc:
        return Violation("ledger_constraint", f"the ledger refused it: {exc.constraint_name}")


class _Undo(Exception):
    def __init__(self, violation: Violation) -> None:
        super().__init__(str(violation))
        self.violation = violation


async def _apply(op: Op, args: EffectArgs) -> Effect | Violation:
    match args:
        case RefundArgs():
            return await refund(op, args)
        case PayoutArgs():
            return await payout(op, args)
        case ApprovePayoutArgs():
            return await approve_payout(op, args)
        case CashbackArgs():
            return await cashback(op, args)
        case InvoiceArgs():
            return await invoice(op, args)
        case ShipArgs():
            items = args.items or _order_items(op.order)
            return await ship(op, "ship", args.carrier, args.tracking_number, items)
        case ReissuePartArgs():
            line = StockLine(sku=args.sku, quantity=args.quantity)
            return await ship(op, "part", args.carrier, args.tracking_number, [line])
        case ShipReplacementArgs():
            return await ship(op, "replacement", args.carrier, args.tracking_number, args.items)
        case ReshipArgs():
            return await reship(op, args)
        case UrgeShipmentArgs():
            return Effect(
                f"shipment urged; delay reason recorded: {args.delay_reason}",
                {"delay_reason": args.delay_reason},
            )
        case OrderChangeArgs():
            return await change_order(op, args)
        case InterceptArgs():
            return await intercept(op, args)
        case PickUpArgs() | TrackReturnArgs():
            return await track_return(op, args)
        case ReceiveReturnArgs():
            return await receive_return(op, args)


# --- finance ---------------------------------------------------------------------------------


async def refund(op: Op, args: RefundArgs) -> Effect | Violation:
    order = order_on_ticket(op.order, op.ticket.id)
    if isinstance(order, Violation):
        return order
    paid = order.amount if order.paid_at is not None else Decimal("0")
    # The order's running total, created at its first refund, locked until commit (one trip).
    total = await op.conn.fetchrow(
        """INSERT INTO order_payments (order_id, paid) VALUES ($1, $2)
           ON CONFLICT (order_id) DO UPDATE SET order_id = excluded.order_id
           RETURNING paid, refunded""",
        order.id,
        paid,
    )
    assert total is not None
    if violation := refund_within_paid(total["paid"], total["refunded"], args.amount):
        return violation
    refund_id = args.refund_id or f"RF-{op.handoff.id}"
    inserted = await op.conn.fetchval(
        """INSERT INTO refunds (refund_id, ticket_id, handoff_id, order_id, amount, reason,
                                by_agent, at, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (refund_id) DO NOTHING RETURNING true""",
        refund_id,
        op.ticket.id,
        op.handoff.id,
        order.id,
        args.amount,
        args.reason,
        op.actor.id,
        op.at,
        op.message_id,
    )
    if not inserted:
        taken = await op.conn.fetchval(
            "SELECT handoff_id FROM refunds WHERE refund_id = $1", refund_id
        )
        return refund_id_unused(refund_id, taken or "another task") or Violation(
            "refund_id_taken", f"refund id {refund_id} is already registered"
        )
    refunded = total["refunded"] + args.amount
    return Effect(
        f"refund {refund_id} of {_money(args.amount)} registered "
        f"(order {order.id}: paid {_money(total['paid'])}, refunded {_money(refunded)})",
        {
            "refund_id": refund_id,
            "amount": _money(args.amount),
            "reason": args.reason,
            "order_id": order.id,
            "refunded_total": _money(refunded),
        },
    )


async def approve_payout(op: Op, args: ApprovePayoutArgs) -> Effect | Violation:
    if violation := approval_by_supervisor(op.actor):
        return violation
    await op.conn.execute(
        """INSERT INTO payout_approvals (handoff_id, ticket_id, amount, approved_by, at,
                                         message_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (handoff_id) DO UPDATE
               SET amount = excluded.amount, approved_by = excluded.approved_by,
                   at = excluded.at, message_id = excluded.message_id""",
        op.handoff.id,
        op.ticket.id,
        args.amount,
        op.actor.id,
        op.at,
        op.message_id,
    )
    return Effect(
        f"payout of up to {_money(args.amount)} approved for {op.handoff.id}",
        {"approved_amount": _money(args.amount), "approved_by": op.actor.id},
        finishes=False,
    )


async def payout(op: Op, args: PayoutArgs) -> Effect | Violation:
    threshold = get_settings().compensation_approval_threshold
    approval = await op.conn.fetchrow(
        "SELECT amount, approved_by FROM payout_approvals WHERE handoff_id = $1", op.handoff.id
    )
    approved = approval["amount"] if approval else None
    if violation := payout_approved(args.amount, threshold, approved):
        return violation
    payout_id = f"PO-{op.handoff.id}"
    await op.conn.execute(
        """INSERT INTO payouts (payout_id, ticket_id, handoff_id, order_id, amount, reason,
                                approval_required, approval_handoff, approved_amount, by_agent,
                                at, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        payout_id,
        op.ticket.id,
        op.handoff.id,
        op.order_id,
        args.amount,
        args.reason,
        args.amount > threshold,
        op.handoff.id if approval else None,
        approved,
        op.actor.id,
        op.at,
        op.message_id,
    )
    data: dict[str, Any] = {"payout_id": payout_id, "amount": _money(args.amount)}
    if approval:
        data["approved_by"] = approval["approved_by"]
    return Effect(f"payout {payout_id} of {_money(args.amount)} paid", data)


async def cashback(op: Op, args: CashbackArgs) -> Effect | Violation:
    entry = await op.conn.fetchval(
        """INSERT INTO cashback_register (ticket_id, handoff_id, order_id, customer_id, amount,
                                          note, by_agent, at, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
        op.ticket.id,
        op.handoff.id,
        op.order_id,
        op.customer_id,
        args.amount,
        args.note,
        op.actor.id,
        op.at,
        op.message_id,
    )
    return Effect(
        f"cash-back entry {entry} of {_money(args.amount)} registered",
        {"cashback_entry": entry, "amount": _money(args.amount)},
    )


async def invoice(op: Op, args: InvoiceArgs) -> Effect | Violation:
    order = order_on_ticket(op.order, op.ticket.id)
    if isinstance(order, Violation):
        return order
    if violation := (
        invoice_after_receipt(order)
        or invoice_within_order(order, args.amount)
        or invoice_is_sent(args.einvoice_id, args.tracking_number)
    ):
        return violation
    assert order.signed_at is not None
    await op.conn.execute(
        """INSERT INTO invoices (ticket_id, handoff_id, order_id, title, amount, quantity,
                                 order_amount, received_at, einvoice_id, tracking_number,
                                 by_agent, at, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        op.ticket.id,
        op.handoff.id,
        order.id,
        args.title,
        args.amount,
        args.quantity,
        order.amount,
        order.signed_at,
        args.einvoice_id,
        args.tracking_number,
        op.actor.id,
        op.at,
        op.message_id,
    )
    sent = {"einvoice_id": args.einvoice_id} if args.einvoice_id else {}
    if args.tracking_number:
        sent["tracking_number"] = args.tracking_number
    return Effect(
        f"invoice of {_money(args.amount)} for order {order.id} issued",
        {"title": args.title, "amount": _money(args.amount), "quantity": args.quantity, **sent},
    )


# --- warehouse -------------------------------------------------------------------------------


def _order_items(order: Order | None) -> list[StockLine]:
    if order is None:
        return []
    return [StockLine(sku=i.sku, quantity=i.quantity) for i in order.items]


def _deltas(lines: Sequence[StockLine], sign: int) -> dict[str, int]:
    deltas: dict[str, int] = {}
    for line in lines:
        deltas[line.sku] = deltas.get(line.sku, 0) + sign * line.quantity
    return deltas


async def move_stock(op: Op, deltas: Mapping[str, int], reason: str) -> Violation | None:
    """Lock the stock rows (sku order), check no level goes negative, then move them."""
    if not deltas:
        return None
    skus = sorted(deltas)
    await op.conn.executemany(
        "INSERT INTO stock (sku, on_hand) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        [(sku,) for sku in skus if deltas[sku] > 0],
    )
    rows = await op.conn.fetch(
        "SELECT sku, on_hand FROM stock WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE",
        skus,
    )
    if violation := stock_stays_non_negative({r["sku"]: r["on_hand"] for r in rows}, deltas):
        return violation
    await op.conn.executemany(
        "UPDATE stock SET on_hand = on_hand + $2, updated_at = $3 WHERE sku = $1",
        [(sku, deltas[sku], op.at) for sku in skus],
    )
    await op.conn.executemany(
        """INSERT INTO stock_movements (sku, delta, reason, ticket_id, handoff_id, by_agent, at,
                                        message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (
                sku,
                deltas[sku],
                reason,
                op.ticket.id,
                op.handoff.id,
                op.actor.id,
                op.at,
                op.message_id,
            )
            for sku in skus
        ],
    )
    return None


async def ship(
    op: Op, kind: str, carrier: str, tracking_number: str, items: Sequence[StockLine]
) -> Effect | Violation:
    if violation := await move_stock(op, _deltas(items, -1), kind):
        return violation
    await op.conn.execute(
        """INSERT INTO shipments (ticket_id, handoff_id, order_id, kind, carrier, tracking_number,
                                  items, by_agent, at, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        op.ticket.id,
        op.handoff.id,
        op.order_id,
        kind,
        carrier,
        tracking_number,
        [line.model_dump() for line in items],
        op.actor.id,
        op.at,
        op.message_id,
    )
    return Effect(
        f"{kind} shipped with {carrier}, tracking number {tracking_number}",
        {
            "kind": kind,
            "carrier": carrier,
            "tracking_number": tracking_number,
            "items": [line.model_dump() for line in items],
        },
    )


async def reship(op: Op, args: ReshipArgs) -> Effect | Violation:
    status = await op.conn.fetchval(
        "SELECT status FROM interceptions WHERE handoff_id = $1", op.handoff.id
    )
    if violation := reship_after_confirmed_interception(status):
        return violation
    # The intercepted parcel itself goes out again: no stock moves.
    return await ship(op, "reship", args.carrier, args.tracking_number, [])


async def change_order(op: Op, args: OrderChangeArgs) -> Effect | Violation:
    order = order_on_ticket(op.order, op.ticket.id)
    if isinstance(order, Violation):
        return order
    shipped = bool(
        await op.conn.fetchval(
            "SELECT true FROM shipments WHERE order_id = $1 AND kind = 'ship' LIMIT 1", order.id
        )
    )
    if violation := change_before_shipping(order, shipped):
        return violation
    printed = order.printed_at is not None
    steps = ["void_print", "reverse_audit", "edit", "re_audit"] if printed else ["edit"]
    return Effect(
        f"order {order.id} changed ({', '.join(steps)}): {args.change}",
        {"change": args.change, "steps": steps, "printed": printed},
    )


async def intercept(op: Op, args: InterceptArgs) -> Effect | Violation:
    if args.mode == "redirect":
        return Effect("parcel redirected", {"mode": "redirect", "note": args.note})
    status = "confirmed" if args.confirmed else "requested"
    await op.conn.execute(
        """INSERT INTO interceptions (handoff_id, ticket_id, mode, status, note, updated_at)
           VALUES ($1, $2, 'intercept', $3, $4, $5)
           ON CONFLICT (handoff_id) DO UPDATE
               SET status = CASE WHEN interceptions.status = 'confirmed' THEN 'confirmed'
                                 ELSE excluded.status END,
                   note = excluded.note, updated_at = excluded.updated_at""",
        op.handoff.id,
        op.ticket.id,
        status,
        args.note,
        op.at,
    )
    return Effect(f"interception {status}", {"interception": status}, finishes=False)


async def track_return(op: Op, args: PickUpArgs | TrackReturnArgs) -> Effect | Violation:
    if isinstance(args, PickUpArgs):
        status, carrier, note = "pickup_arranged", args.carrier, ""
    else:
        status, carrier, note = args.status, None, args.note
    await op.conn.execute(
        """INSERT INTO returns (handoff_id, ticket_id, order_id, status, carrier,
                                tracking_number, notes, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (handoff_id) DO UPDATE
               SET status = excluded.status,
                   carrier = coalesce(excluded.carrier, returns.carrier),
                   tracking_number = coalesce(excluded.tracking_number, returns.tracking_number),
                   notes = excluded.notes, updated_at = excluded.updated_at""",
        op.handoff.id,
        op.ticket.id,
        op.order_id,
        status,
        carrier,
        args.tracking_number,
        note,
        op.at,
    )
    data = {"return_status": status, "tracking_number": args.tracking_number}
    return Effect(f"return {status.replace('_', ' ')}", data, finishes=False)


async def receive_return(op: Op, args: ReceiveReturnArgs) -> Effect | Violation:
    if violation := restock_only_what_passed(args.inspection, args.restock) or await move_stock(
        op, _deltas(args.restock, +1), "restock"
    ):
        return violation
    await op.conn.execute(
        """INSERT INTO returns (handoff_id, ticket_id, order_id, status, inspection, notes,
                                updated_at)
           VALUES ($1, $2, $3, 'received', $4, $5, $6)
           ON CONFLICT (handoff_id) DO UPDATE
               SET status = 'received', inspection = excluded.inspection,
                   notes = excluded.notes, updated_at = excluded.updated_at""",
        op.handoff.id,
        op.ticket.id,
        op.order_id,
        args.inspection,
        args.notes,
        op.at,
    )
    restocked = [line.model_dump() for line in args.restock]
    return Effect(
        f"return received, inspection {args.inspection}, restocked "
        f"{sum(line.quantity for line in args.restock)} item(s)",
        {"inspection": args.inspection, "notes": args.notes, "restocked": restocked},
    )
