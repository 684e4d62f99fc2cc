"""The warehouse's rules, pure (services/warehouse/rules.py): each names what broke."""

from __future__ import annotations

from decimal import Decimal

from services.warehouse.contracts import StockLine
from services.warehouse.rules import (
    change_before_shipping,
    reship_after_confirmed_interception,
    restock_only_what_passed,
    stock_stays_non_negative,
)
from shared.tickets.contracts import Order
from tests.helpers import T0

D = Decimal


def order(**fields: object) -> Order:
    return Order.model_validate({"id": "o-1", "amount": "59.00", **fields})


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
