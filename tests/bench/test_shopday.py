"""A tiny Double-11 shop day against the real broker and database: two lunch-peak hours
compressed into seconds, the workers in this process on the same fast shop clock, and the
day's proofs must hold (bench/shopday.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bench.shopday import main, simulate
from bench.shopday_plan import day_start, plan_day
from bench.shopday_report import DayResult
from services.aftersales.worker import SERVICE as AFTERSALES
from services.finance.worker import SERVICE as FINANCE
from services.intake.worker import SERVICE as INTAKE
from services.presale.worker import SERVICE as PRESALE
from services.warehouse.worker import SERVICE as WAREHOUSE
from shared.bootstrap import start_service
from shared.clock import StartedClock
from shared.config import Settings

HOURS = (12, 14)  # the lunch peak: 1.6 and 1.8 times the normal peak hour
SPEED = 900.0  # two shop hours in 8 s of real time
PLAN = plan_day(1.0, shrink=5, seed=3, hours=HOURS)


@pytest.fixture
async def day(settings: Settings, broker: object) -> AsyncIterator[DayResult]:
    # An hour and a half of shop time (6 s) to start the workers and load the roster first.
    clock = StartedClock(day_start() + timedelta(hours=HOURS[0], minutes=-90), speed=SPEED)
    running = [
        await start_service(s, settings, clock=clock)
        for s in (INTAKE, PRESALE, AFTERSALES, WAREHOUSE, FINANCE)
    ]
    try:
        yield await simulate(settings, clock, PLAN, drain=90.0)
    finally:
        for r in running:
            await r.stop()


def test_the_plan_has_every_kind_of_trouble_to_prove() -> None:
    assert 30 <= len(PLAN.contacts) <= 50
    assert any(c.follow_ups for c in PLAN.contacts)
    assert {c.republish for c in PLAN.contacts} >= {"same_id"}
    assert PLAN.order_events  # unpaid orders paid meanwhile
    assert any(any(type(m).__name__ == "Task" for m in c.path) for c in PLAN.contacts)


async def test_a_tiny_shop_day_holds_its_proofs(day: DayResult) -> None:
    proofs = {p.name: p for p in day.proofs}
    assert all(p.holds for p in day.proofs), "\n".join(
        f"{p.name}: {p.detail}" for p in day.proofs if not p.holds
    )
    assert len(proofs) == 5
    assert not day.gave_up, day.gave_up  # every case walked to its close
    assert day.tickets == len(PLAN.contacts)
    follow_ups = sum(len(c.follow_ups) for c in PLAN.contacts)
    assert len(day.hops["follow-up -> attached"]) == follow_ups
    # Work really went through the other roles and the timers: the proofs were not vacuous.
    assert day.hops["operation -> result"], day.hops
    assert proofs["no effect twice"].count > 0
    assert proofs["every due timer fired once"].count > 0
    assert len(day.round_trips["close"]) == len(PLAN.contacts)
    assert day.sign_ins >= 4  # commands are signed: pre-sale, after-sales and staff signed in


def test_a_chart_folder_that_cannot_be_made_fails_before_the_day_runs(tmp_path: Path) -> None:
    # It was opened only once the whole day had run (minutes), and a missing one failed there.
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError):
        main(["--load", "1", "--chart-dir", str(tmp_path / "a-file" / "charts")])
