"""Build, keep and export the daily report of one shop day (SPEC §9)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shared.calendar.store import load_calendar
from shared.cli.output import jsonable
from shared.db import Connection
from shared.report.figures import FIGURES, FIRST_RESPONSE, HISTOGRAM, Figure

Report = dict[str, Any]


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The shop day's midnight to the next midnight in the calendar's time zone."""
    start = datetime.combine(day, time(0), tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tz)


async def shop_timezone(conn: Connection) -> ZoneInfo:
    return (await load_calendar(conn)).timezone


async def headline(conn: Connection, figure: Figure, args: tuple[Any, ...]) -> dict[str, Any]:
    """count(*) (and sum(value)) over the figure's rows, in all and per breakdown column: one
    query with grouping sets."""
    value = f"sum({figure.value})" if figure.value else "NULL"
    sets = ", ".join(["()", *[f"({g})" for g in figure.groups]]) if figure.groups else "()"
    marks = ", ".join(f"grouping({g}) AS g_{g}" for g in figure.groups)
    cols = ", ".join(figure.groups)
    sql = f"""SELECT {cols + ", " if cols else ""}{marks + ", " if marks else ""}
                     count(*) AS n, {value} AS total
                FROM ({figure.rows}) r GROUP BY GROUPING SETS ({sets})"""
    out: dict[str, Any] = {"count": 0, "by": {g: {} for g in figure.groups}}
    if figure.value:
        out |= {"sum": 0, "sums": {g: {} for g in figure.groups}}
    for row in await conn.fetch(sql, *args):
        group = next((g for g in figure.groups if row[f"g_{g}"] == 0), None)
        total = row["total"] or 0
        if group is None:
            out["count"] = row["n"]
            if figure.value:
                out["sum"] = total
            continue
        key = "-" if row[group] is None else str(row[group])
        out["by"][group][key] = row["n"]
        if figure.value:
            out["sums"][group][key] = total
    return out


async def build_report(
    conn: Connection,
    day: date,
    role: str | None,
    *,
    generated_at: datetime,
    dlq: Mapping[str, Any],
) -> Report:
    """Every figure of the day, computed in SQL; `dlq` is what the broker said (or why not)."""
    tz = await shop_timezone(conn)
    start, end = day_bounds(day, tz)
    args = (start, end, role)
    figures = {f.name: await headline(conn, f, args) for f in FIGURES}
    speed = await conn.fetchrow(FIRST_RESPONSE, *args)
    assert speed is not None  # an aggregate without GROUP BY: one row
    replied = figures["first_response"]["count"]
    received = figures["received"]["count"]
    report: Report = jsonable(
        {
            "day": day.isoformat(),
            "role": role,
            "timezone": tz.key,
            "generated_at": generated_at.isoformat(),
            "figures": figures,
            "first_response_time": {
                "replied": replied,
                "p50_seconds": _seconds(speed["p50"]),
                "p90_seconds": _seconds(speed["p90"]),
                "within_30s": figures["first_response"]["sum"],
                "share_within_30s": _ratio(figures["first_response"]["sum"], replied),
                "histogram_10s": [r["n"] for r in await conn.fetch(HISTOGRAM, *args)],
            },
            "resolution_rate": _ratio(figures["resolved"]["count"], received),
            "dlq": dict(dlq),
            "definitions": {f.name: f.definition for f in FIGURES},
        }
    )
    return report


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _ratio(part: Any, whole: int) -> float | None:
    return None if not whole else round(float(part) / whole, 4)


async def write_csv(conn: Connection, day: date, role: str | None, folder: Path) -> list[Path]:
    """One CSV per figure in `folder` (which exists), its per-ticket rows streamed by COPY
    (never held in Python)."""
    start, end = day_bounds(day, await shop_timezone(conn))
    paths = []
    for figure in FIGURES:
        path = folder / f"{figure.name}.csv"
        await conn.copy_from_query(
            figure.rows, start, end, role, output=path, format="csv", header=True
        )
        paths.append(path)
    return paths


async def keep(conn: Connection, report: Report) -> None:
    """Store the report; producing the same day and role again replaces it."""
    await conn.execute(
        """INSERT INTO daily_reports (day, role, generated_at, body) VALUES ($1, $2, $3, $4)
           ON CONFLICT (day, role) DO UPDATE
              SET generated_at = excluded.generated_at, body = excluded.body""",
        date.fromisoformat(report["day"]),
        report["role"],
        datetime.fromisoformat(report["generated_at"]),
        report,
    )


async def kept(conn: Connection, limit: int = 60) -> list[dict[str, Any]]:
    """The kept reports, newest day first, with their headline counts."""
    rows = await conn.fetch(
        """SELECT day, role, generated_at,
                  (body->'figures'->'received'->>'count')::int AS received,
                  (body->>'resolution_rate')::float AS resolution_rate,
                  (body->'figures'->'carried_over'->>'count')::int AS carried_over
             FROM daily_reports ORDER BY day DESC, role NULLS FIRST LIMIT $1""",
        limit,
    )
    return [dict(r) for r in rows]
