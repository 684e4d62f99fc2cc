"""The warehouse's rules, pure: each returns None when it holds, else the Violation naming it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.warehouse.contracts import StockLine
from shared.tickets.contracts import Order
from shared.tickets.operations import Violation


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
