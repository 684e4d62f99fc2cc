"""Finance's operations: refunds, payouts and their approval, cash-back, invoices (SPEC §7).

Each reads its ledger (locked), checks its rules (`services.finance.rules`) and writes its row;
`OPERATIONS` maps each argument type to its operation, and the finance worker alone runs them
(`shared.tickets.operations.operation_handler`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.finance.contracts import (
    ApprovePayoutArgs,
    CashbackArgs,
    InvoiceArgs,
    PayoutArgs,
    RefundArgs,
)
from services.finance.rules import (
    approval_by_supervisor,
    invoice_after_receipt,
    invoice_is_sent,
    invoice_within_order,
    payout_approved,
    refund_id_unused,
    refund_within_paid,
    refund_within_task,
    task_amount,
)
from shared.config import get_settings
from shared.tickets.operations import Effect, Op, Operations, Violation, order_on_ticket
from shared.tickets.operations import money as _money


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
    if violation := refund_within_paid(
        total["paid"], total["refunded"], args.amount
    ) or refund_within_task(task_amount(dict(op.handoff.task.data)), args.amount):
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


OPERATIONS: Operations = {
    RefundArgs: refund,
    PayoutArgs: payout,
    ApprovePayoutArgs: approve_payout,
    CashbackArgs: cashback,
    InvoiceArgs: invoice,
}
