"""Finance's rules, pure (services/finance/rules.py): each names what broke."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.finance.contracts import RefundArgs
from services.finance.rules import (
    approval_by_supervisor,
    invoice_after_receipt,
    invoice_is_sent,
    invoice_within_order,
    payout_approved,
    refund_within_paid,
    refund_within_task,
    task_amount,
)
from shared.tickets import Actor
from shared.tickets.contracts import Order
from shared.tickets.roles import Role
from tests.helpers import T0

D = Decimal


def order(**fields: object) -> Order:
    return Order.model_validate({"id": "o-1", "amount": "59.00", **fields})


def test_refund_up_to_paid_passes() -> None:
    assert refund_within_paid(D("59.00"), D("0"), D("59.00")) is None
    assert refund_within_paid(D("59.00"), D("40.00"), D("19.00")) is None


def test_refund_past_paid_names_the_figures() -> None:
    v = refund_within_paid(D("59.00"), D("40.00"), D("30.00"))
    assert v is not None
    assert str(v) == "refund_exceeds_paid: paid 59.00, refunded 40.00, asked 30.00"
    unpaid = refund_within_paid(D("0"), D("0"), D("1"))
    assert unpaid is not None and unpaid.message == "paid 0.00, refunded 0.00, asked 1.00"


@pytest.mark.parametrize(
    ("amount", "approved", "code"),
    [
        ("50.00", None, None),  # at the threshold: no approval needed
        ("50.01", None, "payout_needs_approval"),
        ("80.00", "80.00", None),
        ("80.00", "60.00", "payout_exceeds_approval"),
        ("10.00", "5.00", "payout_exceeds_approval"),  # an approval on record binds below too
    ],
)
def test_payout_threshold_and_approval(amount: str, approved: str | None, code: str | None) -> None:
    v = payout_approved(D(amount), D("50"), D(approved) if approved else None)
    assert (v.code if v else None) == code


def test_invoice_rules() -> None:
    assert invoice_after_receipt(order()) is not None
    assert invoice_after_receipt(order(signed_at=T0)) is None
    v = invoice_within_order(order(), D("60.00"))
    assert v is not None and str(v) == "invoice_exceeds_order: order o-1 amount 59.00, asked 60.00"
    assert invoice_within_order(order(), D("59.00")) is None
    assert invoice_is_sent(None, None) is not None
    assert invoice_is_sent("E-1", None) is None


def test_approvals_are_for_supervisors() -> None:
    assert approval_by_supervisor(Actor("s1", "S", frozenset({Role.SUPERVISOR}))) is None
    assert approval_by_supervisor(Actor("f1", "F", frozenset({Role.FINANCE}))) is not None


def test_a_zero_refund_is_malformed_not_a_refund() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        RefundArgs(handoff_id="h", amount=D("0.00"), reason="r")


def test_a_refund_never_exceeds_what_its_task_asked_for() -> None:
    assert refund_within_task(D("59.00"), D("59.00")) is None
    assert refund_within_task(None, D("80.00")) is None  # the task named no amount
    violation = refund_within_task(D("59.00"), D("59.01"))
    assert violation is not None and violation.code == "refund_exceeds_task"
    assert str(violation) == "refund_exceeds_task: the task asked for 59.00, asked 59.01"
    assert task_amount({"amount": "59.00"}) == D("59.00")
    assert task_amount({"amount": "lots"}) is None and task_amount({}) is None
