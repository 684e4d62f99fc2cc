"""Finance's ledger rules, pure: each returns None when it holds, else the Violation naming it."""

from __future__ import annotations

from decimal import Decimal

from shared.tickets import Actor, is_supervisor
from shared.tickets.contracts import Order
from shared.tickets.operations import Violation
from shared.tickets.operations import money as _money


def refund_within_paid(paid: Decimal, refunded: Decimal, asked: Decimal) -> Violation | None:
    if refunded + asked <= paid:
        return None
    return Violation(
        "refund_exceeds_paid",
        f"paid {_money(paid)}, refunded {_money(refunded)}, asked {_money(asked)}",
    )


def refund_within_task(task_amount: Decimal | None, asked: Decimal) -> Violation | None:
    """The task said how much to refund (its `amount`): never more (SPEC §7, seed 004)."""
    if task_amount is None or asked <= task_amount:
        return None
    return Violation(
        "refund_exceeds_task", f"the task asked for {_money(task_amount)}, asked {_money(asked)}"
    )


def task_amount(data: object) -> Decimal | None:
    """The task's `amount`, when it names one a refund can be held to."""
    raw = data.get("amount") if isinstance(data, dict) else None
    try:
        amount = Decimal(str(raw)) if raw is not None else None
    except ArithmeticError:
        return None
    return amount if amount is not None and amount.is_finite() and amount >= 0 else None


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


def approval_by_supervisor(actor: Actor) -> Violation | None:
    if is_supervisor(actor):
        return None
    return Violation("approval_needs_supervisor", "only a supervisor approves a payout")
