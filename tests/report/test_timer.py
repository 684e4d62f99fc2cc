"""The report is made by itself when the shop day ends: the `report_day` timer."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from shared.clock import FixedClock
from shared.config import Settings, get_settings
from shared.db import Pool
from shared.report.timer import KIND, report_timers
from shared.timers import TimerLoop
from tests.report.day import SHANGHAI
from tests.staff import Cli

MIDNIGHT = datetime(2026, 11, 24, tzinfo=SHANGHAI)  # the end of T0's shop day (11-23)


async def test_each_midnight_keeps_the_day_and_arms_the_next(
    db: Pool, cli: Cli, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await cli("report", "schedule")
    assert run.exit_code == 0 and "2026-11-24 00:00:00" in run.stdout, run
    monkeypatch.setenv("TICKETQ_AMQP_URL", settings.amqp_url)
    get_settings.cache_clear()
    loop = TimerLoop(report_timers(), database_url="unused")
    clock = FixedClock(datetime(2026, 11, 23, 23, 59, tzinfo=SHANGHAI))
    assert await loop.fire_due(db, clock) == 0
    clock.set(MIDNIGHT)
    assert await loop.fire_due(db, clock) == 1
    get_settings.cache_clear()
    kept = await db.fetch("SELECT day, role, body FROM daily_reports")
    assert [(r["day"], r["role"]) for r in kept] == [(date(2026, 11, 23), None)]
    pending = await db.fetchval(
        "SELECT due_at FROM timers WHERE kind = $1 AND state = 'pending'", KIND
    )
    assert pending == datetime(2026, 11, 25, tzinfo=SHANGHAI)
