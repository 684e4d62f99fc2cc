"""The workbench's pure parts: history rows put in number order, forms derived from the
argument models, refusals in words."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.finance.contracts import FinanceOperation, RefundArgs
from services.warehouse.contracts import ShipArgs, WarehouseOperation
from shared.tickets.contracts import HandOffArgs
from shared.web.forms import fill, form_of, operation_forms
from shared.web.live import Sequencer
from shared.web.words import refusal_text


def rows(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i} for i in ids]


def ids(delivered: list[Any]) -> list[int]:
    return [r["id"] for r in delivered]


def test_rows_in_order_go_out_at_once() -> None:
    seq = Sequencer(10, grace=2.0)
    assert ids(seq.offer(rows(11, 12, 13), now=0.0)) == [11, 12, 13]
    assert seq.settled == 13


def test_a_row_committed_after_a_higher_one_is_not_lost() -> None:
    seq = Sequencer(10, grace=2.0)
    assert ids(seq.offer(rows(12), now=0.0)) == []  # 11 is still in flight
    assert ids(seq.offer(rows(11, 12), now=0.5)) == [11, 12]
    assert seq.settled == 12


def test_a_hole_left_by_a_rollback_is_given_up_after_the_grace() -> None:
    seq = Sequencer(10, grace=2.0)
    assert ids(seq.offer(rows(12, 13), now=0.0)) == []
    assert ids(seq.offer(rows(12, 13), now=1.9)) == []
    assert ids(seq.offer(rows(12, 13), now=2.0)) == [12, 13]
    assert ids(seq.offer(rows(11), now=3.0)) == []  # too late: settled past it


def test_rows_already_delivered_are_not_delivered_again() -> None:
    seq = Sequencer(10, grace=2.0)
    seq.offer(rows(11), now=0.0)
    assert ids(seq.offer(rows(11, 12), now=0.1)) == [12]


def test_operation_forms_are_the_models_fields() -> None:
    forms = operation_forms(FinanceOperation)
    assert set(forms) == {"refund", "payout", "approve_payout", "cashback", "invoice"}
    refund = forms["refund"]
    assert refund.model is RefundArgs
    kinds = {i.name: i.kind for i in refund.inputs}
    assert kinds == {
        "handoff_id": "text",
        "return_on_violation": "checkbox",
        "amount": "money",
        "reason": "textarea",  # up to 500 characters
        "refund_id": "text",
    }
    ship = operation_forms(WarehouseOperation)["ship"]
    assert ship.model is ShipArgs
    assert {i.name: i.kind for i in ship.inputs}["items"] == "lines"


def test_a_filled_form_builds_the_model() -> None:
    refund = operation_forms(FinanceOperation)["refund"]
    filled = fill(refund, {"handoff_id": "h-1", "amount": "59.00", "reason": "退货退款"})
    assert filled.errors == {}
    assert filled.args == RefundArgs(handoff_id="h-1", amount=Decimal("59.00"), reason="退货退款")


def test_every_bad_field_is_named_and_nothing_is_built() -> None:
    refund = operation_forms(FinanceOperation)["refund"]
    filled = fill(refund, {"handoff_id": "h-1", "amount": "-5", "reason": ""})
    assert set(filled.errors) == {"amount", "reason"}
    assert filled.errors["reason"] == "required"
    assert filled.args is None


def test_lines_and_pairs_are_parsed_like_the_cli_options() -> None:
    ship = operation_forms(WarehouseOperation)["ship"]
    filled = fill(
        ship,
        {"handoff_id": "h", "carrier": "SF", "tracking_number": "SF1", "items": "A-1=2\nB-2=1"},
    )
    assert filled.errors == {}
    assert filled.args is not None
    assert [line.sku for line in filled.args.items] == ["A-1", "B-2"]  # type: ignore[attr-defined]
    bad = fill(ship, {"handoff_id": "h", "carrier": "SF", "tracking_number": "S", "items": "A-1"})
    assert "expected SKU=QUANTITY" in bad.errors["items"]
    hand_off = form_of(HandOffArgs, choices={"role": ["warehouse", "finance"]})
    done = fill(hand_off, {"role": "finance", "action": "refund", "data": "amount=59.00"})
    assert done.args == HandOffArgs(role="finance", action="refund", data={"amount": "59.00"})
    refused = fill(hand_off, {"role": "presale", "action": "x"})
    assert refused.errors["role"] == "one of: warehouse, finance"


def test_refusals_in_words() -> None:
    ticket = {
        "first_handler": {"id": "a1", "name": "李娜"},
        "owner": {"role": "aftersales", "agent": {"id": "a2", "name": "王强"}},
    }
    text = refusal_text("not_first_handler", "only the first handler...", "close", ticket)
    assert text.startswith("Only the first handler, 李娜 (a1), may close this ticket.")
    assert "not_first_handler" in text
    owner = refusal_text("not_owner", "m", "record_result", ticket)
    assert owner.startswith("Only the ticket's owner, 王强 (a2) (aftersales), may record a result")
    assert refusal_text("refund_exceeds_paid", "paid 59.00", "refund", None) == (
        "Refused (refund_exceeds_paid): paid 59.00"
    )
