"""`ticketq report daily|list|schedule`: the day's report for the team lead, and the kept ones.

A team lead's or operator's command: it runs on the `report` credentials (`TICKETQ_REPORT_*`:
the tickets and records the figures read, the reports kept, the report's timer; the DLQs'
depths; the agents' CLI has no database), and the pre-sale desk also makes the report by
itself at every shop midnight (`shared.report.timer`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.cli.commands import JsonOpt
from shared.cli.db import database
from shared.cli.output import Column, emit, fields, run, shop_time, table
from shared.clock import clock_from_env
from shared.config import Settings, report_settings
from shared.report.daily import Report, build_report, keep, kept, shop_timezone, write_csv
from shared.report.dlq import dlq_counts
from shared.report.html import HEADLINES, lookup, render
from shared.report.timer import arm_next
from shared.tickets.roles import Role

report_app = typer.Typer(help="The daily report: produce one, list the kept ones.")


async def produce(
    settings: Settings, day: date | None, role: Role | None, csv_dir: Path | None
) -> tuple[Report, list[Path]]:
    """Build the report of `day` (default: yesterday in the shop's time zone), keep it, and
    write its CSVs when asked."""
    dlq = await dlq_counts(settings.amqp_url)
    async with database(settings) as conn:
        now = clock_from_env().now()
        if day is None:
            day = now.astimezone(await shop_timezone(conn)).date() - timedelta(days=1)
        role_name = role.value if role else None
        report = await build_report(conn, day, role_name, generated_at=now, dlq=dlq)
        await keep(conn, report)
        paths = await write_csv(conn, day, role_name, csv_dir) if csv_dir else []
    return report, paths


@report_app.command("daily")
def daily(
    on: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="The shop day (default: yesterday)"),
    ] = None,
    role: Annotated[Role | None, typer.Option("--role", help="Only this role's tickets")] = None,
    csv_dir: Annotated[
        Path | None, typer.Option("--csv", help="Write one per-ticket CSV per figure here")
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Figures of one shop day (midnight to midnight in the calendar's time zone); kept."""
    if csv_dir:
        csv_dir.mkdir(parents=True, exist_ok=True)
    report, paths = run(produce(report_settings(), on.date() if on else None, role, csv_dir))
    if html:
        html.write_text(render(report), encoding="utf-8")
    emit(report, as_json=as_json, text=lambda: _text(report, paths, html))


def _text(report: Report, paths: list[Path], html: Path | None) -> str:
    lines = [f"Daily report {report['day']} ({report['role'] or 'all roles'})"]
    lines.append(fields([(title, lookup(report, path)) for title, path in HEADLINES]))
    dlq = report["dlq"]
    lines.append(
        f"DLQ: {dlq['error']}"
        if "error" in dlq
        else "DLQ: "
        + ", ".join(f"{q} {n if n is not None else '-'}" for q, n in dlq["queues"].items())
    )
    lines += [f"csv: {p}" for p in paths] + ([f"html: {html}"] if html else [])
    return "\n".join(lines)


@report_app.command("list")
def list_reports(as_json: JsonOpt = False) -> None:
    """The kept daily reports, newest first."""

    async def go() -> list[dict[str, Any]]:
        async with database(report_settings()) as conn:
            return await kept(conn)

    rows = run(go())
    columns = [
        Column("day"),
        Column("role"),
        Column("generated_at", "generated"),
        Column("received", align="right"),
        Column("resolution_rate", "resolution rate", align="right"),
        Column("carried_over", "carried over", align="right"),
    ]
    emit(rows, as_json=as_json, text=lambda: table(rows, columns))


@report_app.command("schedule")
def schedule() -> None:
    """Make the report by itself at every shop midnight (arms the first `report_day` timer)."""

    async def go() -> datetime:
        async with database(report_settings()) as conn:
            return await arm_next(conn, clock_from_env().now())

    typer.echo(f"the next report is made at {shop_time(run(go()))}")
