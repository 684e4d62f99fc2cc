"""Finance's messages: its operations on handed-off tasks (SPEC §7).

Each operation completes or advances a finance handoff; `FinanceOperation` carries one to the
finance worker (request/reply), which alone applies them (`services.finance.operations`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from shared.tickets.contracts import Amount, OperationArgs, OperationCommand


class RefundArgs(OperationArgs):
    """Finance: register a refund (§7 Return); never more than was paid, once per task."""

    command: Literal["refund"] = "refund"
    amount: Amount
    reason: str = Field(min_length=1, max_length=500, description="Verified reason")
    refund_id: str | None = Field(
        None, min_length=1, max_length=100, description="Payment system's refund id, if known"
    )


class PayoutArgs(OperationArgs):
    """Finance: pay an agreed compensation; above the threshold a supervisor approval must
    be on record (§7 Compensation)."""

    command: Literal["payout"] = "payout"
    amount: Amount
    reason: str = Field("compensation", min_length=1, max_length=500)


class ApprovePayoutArgs(OperationArgs):
    """Supervisor: approve a compensation payout of up to `amount` for a finance handoff."""

    returns_on_violation: ClassVar[bool] = False

    command: Literal["approve_payout"] = "approve_payout"
    amount: Amount


class CashbackArgs(OperationArgs):
    """Finance: an entry in the cash-back register (返现登记)."""

    command: Literal["cashback"] = "cashback"
    amount: Amount
    note: str = Field("", max_length=500)


class InvoiceArgs(OperationArgs):
    """Finance: issue an invoice after confirmed receipt, amount at most the order's."""

    command: Literal["invoice"] = "invoice"
    title: str = Field(min_length=1, max_length=200, description="Invoice title (抬头)")
    amount: Amount
    quantity: int = Field(ge=1, le=100_000)
    einvoice_id: str | None = Field(None, min_length=1, max_length=100)
    tracking_number: str | None = Field(
        None, min_length=1, max_length=100, description="For a paper invoice sent by post"
    )


FinanceArgs = Annotated[
    RefundArgs | PayoutArgs | ApprovePayoutArgs | CashbackArgs | InvoiceArgs,
    Field(discriminator="command"),
]


class FinanceOperation(OperationCommand):
    """A finance staff member's (or, for approvals, a supervisor's) operation on a handoff."""

    TYPE: ClassVar[str] = "finance.operation"
    args: FinanceArgs
