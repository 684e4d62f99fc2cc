"""The report made when the shop day ends: a `report_day` timer of the shop clock.

`ticketq report schedule` arms the first one (once, at deployment; again is harmless); each
firing keeps the report of the day that just ended (all roles) and arms the next midnight. The
pre-sale desk fires it (services/presale/worker.py). A worker away over several midnights
reports only the last day when it is back: `ticketq report daily --date` makes the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.config import get_settings
from shared.db import Connection
from shared.report.daily import build_report, day_bounds, keep, shop_timezone
from shared.report.dlq import dlq_counts
from shared.timers import FireHandler, Firing, arm

KIND = "report_day"
KEY = "daily-report"  # timers are keyed by ticket id: the report's own key, not a ticket


async def arm_next(conn: Connection, now: datetime) -> datetime:
    """Arm the report for the end of the shop day `now` is in; that time."""
    tz = await shop_timezone(conn)
    due = day_bounds(now.astimezone(tz).date(), tz)[1]
    async with conn.transaction():
        await arm(conn, ticket_id=KEY, kind=KIND, due_at=due, clock="calendar", now=now)
    return due


async def fire_report_day(firing: Firing) -> None:
    conn = firing.conn
    tz = await shop_timezone(conn)
    ended = (firing.timer.due_at.astimezone(tz) - timedelta(seconds=1)).date()
    dlq = await dlq_counts(get_settings().amqp_url)
    await keep(conn, await build_report(conn, ended, None, generated_at=firing.now, dlq=dlq))
    await arm_next(conn, max(firing.now, firing.timer.due_at))


def report_timers() -> dict[str, FireHandler]:
    return {KIND: fire_report_day}
