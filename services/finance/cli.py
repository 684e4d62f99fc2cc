"""`ticketq finance ...`: finance's tasks, operations and ledger (SPEC §7).

`tasks` lists the handoffs waiting for finance; each operation (`refund`, `payout`,
`approve-payout`, `cashback`, `invoice`) is derived from its argument model
(`services.finance.contracts`) and sent to the finance worker, which alone applies it: the
answer comes at once, accepted with what was recorded (refund id...) or rejected with the
ledger rule that broke and its figures (exit 1). `--return-on-violation` also returns the task
to the first handler as failed, with the reason. `ledger` shows what finance recorded.
"""

from __future__ import annotations

from typing import Annotated

import typer

from services.finance.contracts import FinanceOperation
from shared.cli.commands import ActorOpt, JsonOpt, operation_commands
from shared.cli.output import emit, table
from shared.cli.reads import read
from shared.tickets.cli import tasks_command
from shared.tickets.read_requests import ShowLedger
from shared.tickets.roles import Role

finance_app = typer.Typer(
    help="Finance: tasks waiting, refunds, payouts, invoices.", no_args_is_help=True
)
tasks_command(finance_app, Role.FINANCE)
operation_commands(finance_app, FinanceOperation)


@finance_app.command("ledger")
def ledger(
    ticket_id: Annotated[
        str | None, typer.Option("--ticket", metavar="ID", help="Only this ticket")
    ] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Refunds, payouts, cash-back entries and invoices recorded, newest first."""

    entries = read(ShowLedger, actor, ticket_id=ticket_id)

    def text() -> str:
        columns = ["id", "ticket_id", "handoff_id", "order_id", "amount", "note", "by_agent", "at"]
        return "\n\n".join(
            f"{name}:\n{table(rows, columns, indent='  ', empty='  (none)')}"
            for name, rows in entries.items()
        )

    emit(entries, as_json=as_json, text=text)
