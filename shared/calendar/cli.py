"""`ticketq calendar load FILE` and `ticketq calendar show`: the shop calendar in the database.

`load` is an operator's (the admin's database credentials); `show` asks a desk
(`read.calendar_day`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.agents.store import load_shifts
from shared.calendar.load import parse_calendar, shift_spans
from shared.calendar.model import CalendarError
from shared.calendar.store import save_calendar
from shared.cli.commands import ActorOpt
from shared.cli.db import database
from shared.cli.output import Refused, emit, fields, grid, run
from shared.cli.reads import read
from shared.config import operator_settings
from shared.tickets.read_requests import ShowCalendarDay
from shared.tickets.roles import Role

calendar_app = typer.Typer(
    help="The shop calendar: staffed hours per role, holidays, make-up workdays (调休).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]


@calendar_app.command("load")
def calendar_load(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="The calendar, YAML"),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Check a calendar file and store it as the new current version (a bad file: nothing)."""

    async def go() -> int:
        async with database(operator_settings()) as conn:
            shifts = shift_spans(await load_shifts(conn))  # the roster's shifts may be named
            try:
                text = file.read_text(encoding="utf-8")
                calendar = parse_calendar(text, shifts=shifts)
            except (OSError, UnicodeDecodeError, CalendarError) as exc:
                raise Refused(f"{file}: {exc}") from None
            return await save_calendar(conn, calendar, file.name)

    version = run(go())
    emit(
        {"file": str(file), "version": version},
        as_json=as_json,
        text=f"loaded {file} as calendar version {version}",
    )


@calendar_app.command("show")
def calendar_show(
    on: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="The shop day (default: today)"),
    ] = None,
    role: Annotated[Role | None, typer.Option("--role", help="Only this role")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The staffed hours of one shop day per role, and whether it is a holiday, 调休 or special."""

    data = read(
        ShowCalendarDay, actor, day=on.date() if on else None, role=role
    )  # no --date: the desk's today
    emit(data, as_json=as_json, text=lambda: _text(data))


def _text(data: dict[str, Any]) -> str:
    head = fields(
        [
            ("date", f"{data['date']} ({data['weekday']}, {data['timezone']})"),
            ("day", f"{data['kind']}" + (f": {data['name']}" if data["name"] else "")),
        ]
    )
    rows = [[role, spans or "closed"] for role, spans in data["hours"].items()]
    return head + "\n\n" + grid(["ROLE", "STAFFED"], rows)
