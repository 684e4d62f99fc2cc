"""Calendar versions in PostgreSQL (`calendar_versions`): each load adds one; the newest is used."""

from __future__ import annotations

from datetime import datetime

from shared.calendar.load import calendar_body, calendar_from_body, sample_calendar
from shared.calendar.model import Calendar
from shared.db import Connection


async def save_calendar(conn: Connection, calendar: Calendar, source: str) -> int:
    """Store `calendar` as the newest version; `source` says where it came from (a file name)."""
    version: int = await conn.fetchval(
        "INSERT INTO calendar_versions (source, body) VALUES ($1, $2) RETURNING version",
        source,
        calendar_body(calendar),
    )
    return version


# The newest version read, parsed once: every command that arms a business clock asks for it.
_newest: dict[tuple[int, datetime], Calendar] = {}


async def load_calendar(conn: Connection) -> Calendar:
    """The current calendar: the newest version stored.

    When no calendar was ever loaded, the packaged sample (`shared/calendar/sample.yaml`, seed
    000's hours with 2026-2027 holidays) is used, so business clocks always have hours to count.
    A version is read and parsed once (keyed by version and load time; calendars are frozen).
    """
    row = await conn.fetchrow(
        "SELECT version, loaded_at FROM calendar_versions ORDER BY version DESC LIMIT 1"
    )
    if row is None:
        return sample_calendar()
    key = (row["version"], row["loaded_at"])
    calendar = _newest.get(key)
    if calendar is None:
        body = await conn.fetchval(
            "SELECT body FROM calendar_versions WHERE version = $1", row["version"]
        )
        calendar = calendar_from_body(body)
        _newest.clear()  # only the newest is ever asked for
        _newest[key] = calendar
    return calendar
