"""`ticketq finance ...`: the finance staff's tasks and operations (issue 5, SPEC §7).

`tasks` lists the handoffs waiting for a role (read from the system of record); each operation
(`refund`, `payout`, `approve-payout`, `cashback`, `invoice`) is a `TicketCommand` sent to the
worker like every other action (`shared.cli.tickets.ticket_action`): the answer comes at once,
accepted with what was recorded (refund id...) or rejected with the ledger rule that broke and
its figures (exit 1). `--return-on-violation` also returns the task to the first handler as
failed, with the reason. `ledger` shows what finance recorded. `open_tasks` and `list_tasks` are
shared with `ticketq warehouse`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from shared.cli.output import Column, emit, run, shop_time, table
from shared.cli.rpc import DbConnection, database
from shared.cli.tickets import JsonOpt, build, mask_detail, ticket_action
from shared.config import get_settings
from shared.domain.roles import Role
from shared.models.commands import (
    ApprovePayoutArgs,
    CashbackArgs,
    CommandArgs,
    InvoiceArgs,
    PayoutArgs,
    RefundArgs,
)

finance_app = typer.Typer(
    help="Finance: tasks waiting, refunds, payouts, invoices.", no_args_is_help=True
)

HandoffId = Annotated[str, typer.Argument(metavar="HANDOFF_ID", help="The task's handoff id")]
ReturnOpt = Annotated[
    bool,
    typer.Option(
        "--return-on-violation",
        help="If a rule forbids it, return the task to the first handler as failed with the "
        "reason (nothing is recorded in the ledger either way)",
    ),
]


def money(text: str, option: str = "--amount") -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"expected an amount like 59.00, got {text!r}") from None
    if not value.is_finite():
        raise typer.BadParameter(f"expected an amount like 59.00, got {text!r}", param_hint=option)
    return value


AmountOpt = Annotated[str, typer.Option("--amount", metavar="CNY", help="e.g. 59.00")]


# --------------------------------------------------------------------------------------------
# Tasks waiting for a role


async def open_tasks(conn: DbConnection, role: Role) -> list[dict[str, Any]]:
    """Handoffs to `role` with no result yet, oldest first, from the tickets' state."""
    rows = await conn.fetch(
        """SELECT t.id AS ticket_id, t.order_id, h->>'id' AS handoff_id,
                  h->'task'->>'action' AS action, h->'task'->'data' AS data,
                  (h->>'opened_at')::timestamptz AS opened_at,
                  h->'opened_by'->>'id' AS opened_by, h->'taken_by'->>'id' AS taken_by,
                  t.first_handler_id
             FROM tickets t, jsonb_array_elements(t.state->'handoffs') h
            WHERE t.state IS NOT NULL AND t.status <> 'closed' AND h->>'role' = $1
              AND coalesce(jsonb_typeof(h->'result'), 'null') = 'null'
            ORDER BY (h->>'opened_at')::timestamptz, t.id""",
        role.value,
    )
    return [{**dict(r), "data": mask_detail(r["data"] or {})} for r in rows]


def _data_text(data: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items())


def tasks_text(tasks: Sequence[Mapping[str, Any]]) -> str:
    return table(
        tasks,
        [
            Column("ticket_id", "TICKET"),
            Column("handoff_id", "TASK"),
            "action",
            Column("data", format=_data_text, max_width=50),
            Column("order_id", "ORDER"),
            Column("opened_at", "OPENED", format=lambda at: shop_time(at, seconds=False)),
            Column("taken_by", "TAKEN BY"),
            Column("first_handler_id", "FIRST HANDLER"),
        ],
        empty="(no task waiting)",
    )


def list_tasks(role: Role, as_json: bool) -> None:
    async def go() -> list[dict[str, Any]]:
        async with database(get_settings()) as conn:
            return await open_tasks(conn, role)

    tasks = run(go())
    emit(tasks, as_json=as_json, text=lambda: tasks_text(tasks))


@finance_app.command("tasks")
def tasks(as_json: JsonOpt = False) -> None:
    """Tasks handed to finance and not done yet."""
    list_tasks(Role.FINANCE, as_json)


@ticket_action(finance_app, "refund")
def refund(
    handoff_id: HandoffId,
    amount: AmountOpt,
    reason: Annotated[str, typer.Option("--reason", help="The verified reason")],
    refund_id: Annotated[
        str | None, typer.Option("--refund-id", help="The payment system's refund id")
    ] = None,
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Register a refund: never more than was paid in total, once per task."""
    return build(
        RefundArgs,
        handoff_id=handoff_id,
        amount=money(amount),
        reason=reason,
        refund_id=refund_id,
        return_on_violation=return_on_violation,
    )


@ticket_action(finance_app, "payout")
def payout(
    handoff_id: HandoffId,
    amount: AmountOpt,
    reason: Annotated[str, typer.Option("--reason")] = "compensation",
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Pay a compensation; above the threshold a supervisor's approval must be on record."""
    return build(
        PayoutArgs,
        handoff_id=handoff_id,
        amount=money(amount),
        reason=reason,
        return_on_violation=return_on_violation,
    )


@ticket_action(finance_app, "approve-payout")
def approve_payout(handoff_id: HandoffId, amount: AmountOpt) -> CommandArgs:
    """Supervisor: approve a compensation payout of up to AMOUNT for a finance task."""
    return build(ApprovePayoutArgs, handoff_id=handoff_id, amount=money(amount))


@ticket_action(finance_app, "cashback")
def cashback(
    handoff_id: HandoffId,
    amount: AmountOpt,
    note: Annotated[str | None, typer.Option("--note")] = None,
) -> CommandArgs:
    """Record an entry in the cash-back register."""
    return build(CashbackArgs, handoff_id=handoff_id, amount=money(amount), note=note)


@ticket_action(finance_app, "invoice")
def invoice(
    handoff_id: HandoffId,
    title: Annotated[str, typer.Option("--title", help="Invoice title (抬头)")],
    amount: AmountOpt,
    quantity: Annotated[int, typer.Option("--quantity", min=1)],
    einvoice_id: Annotated[str | None, typer.Option("--einvoice-id")] = None,
    tracking_number: Annotated[
        str | None, typer.Option("--tracking", help="Tracking number of a paper invoice")
    ] = None,
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Issue an invoice: only after confirmed receipt, never above the order amount."""
    return build(
        InvoiceArgs,
        handoff_id=handoff_id,
        title=title,
        amount=money(amount),
        quantity=quantity,
        einvoice_id=einvoice_id,
        tracking_number=tracking_number,
        return_on_violation=return_on_violation,
    )


@finance_app.command("ledger")
def ledger(
    ticket_id: Annotated[
        str | None, typer.Option("--ticket", metavar="ID", help="Only this ticket")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Refunds, payouts, cash-back entries and invoices recorded, newest first."""

    async def go() -> dict[str, list[dict[str, Any]]]:
        async with database(get_settings()) as conn:
            out: dict[str, list[dict[str, Any]]] = {}
            for name, sql in (
                ("refunds", "SELECT refund_id AS id, order_id, amount, reason AS note"),
                ("payouts", "SELECT payout_id AS id, order_id, amount, reason AS note"),
                ("cashback", "SELECT id::text, order_id, amount, note"),
                (
                    "invoices",
                    "SELECT coalesce(einvoice_id, tracking_number) AS id, order_id, "
                    "amount, title AS note",
                ),
            ):
                table_name = "cashback_register" if name == "cashback" else name
                rows = await conn.fetch(
                    f"{sql}, ticket_id, handoff_id, by_agent, at FROM {table_name} "
                    "WHERE ticket_id = coalesce($1, ticket_id) ORDER BY at DESC LIMIT 200",
                    ticket_id,
                )
                out[name] = [dict(r) for r in rows]
            return out

    entries = run(go())

    def text() -> str:
        columns = ["id", "ticket_id", "handoff_id", "order_id", "amount", "note", "by_agent", "at"]
        return "\n\n".join(
            f"{name}:\n{table(rows, columns, indent='  ', empty='  (none)')}"
            for name, rows in entries.items()
        )

    emit(entries, as_json=as_json, text=text)
