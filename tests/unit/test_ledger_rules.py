"""The warehouse and finance ledger rules, pure (services/*/rules.py): each names what broke."""

from __future__ import annotations

from datetime import UTC, datetime
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
)
from services.warehouse.contracts import StockLine
from services.warehouse.rules import (
    change_before_shipping,
    reship_after_confirmed_interception,
    restock_only_what_passed,
    stock_stays_non_negative,
)
from shared.tickets import Actor
from shared.tickets.contracts import Order
from shared.tickets.roles import Role

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
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


def test_stock_never_goes_negative() -> None:
    assert stock_stays_non_negative({"A": 2}, {"A": -2}) is None
    v = stock_stays_non_negative({"A": 1}, {"A": -2, "B": -1, "C": 3})
    assert v is not None and v.code == "stock_would_go_negative"
    assert v.message == "A: on hand 1, asked 2; B: on hand 0, asked 1"


def test_order_change_and_reship() -> None:
    assert change_before_shipping(order(printed_at=T0), shipped=False) is None
    assert change_before_shipping(order(), shipped=True) is not None
    shipped = change_before_shipping(order(shipped_at=T0), shipped=False)
    assert shipped is not None and shipped.code == "order_already_shipped"
    assert reship_after_confirmed_interception("confirmed") is None
    for status in (None, "requested"):
        v = reship_after_confirmed_interception(status)
        assert v is not None and v.code == "interception_not_confirmed"


def test_only_what_passed_inspection_is_restocked() -> None:
    line = [StockLine(sku="A", quantity=1)]
    assert restock_only_what_passed("passed", line) is None
    assert restock_only_what_passed("damaged", []) is None
    v = restock_only_what_passed("damaged", line)
    assert v is not None and v.code == "restock_after_failed_inspection"


def test_approvals_are_for_supervisors() -> None:
    assert approval_by_supervisor(Actor("s1", "S", frozenset({Role.SUPERVISOR}))) is None
    assert approval_by_supervisor(Actor("f1", "F", frozenset({Role.FINANCE}))) is not None


def test_a_zero_refund_is_malformed_not_a_refund() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        RefundArgs(handoff_id="h", amount=D("0.00"), reason="r")
