"""The flows' fixtures: the five workers running on one FixedClock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.aftersales.worker import SERVICE as AFTERSALES
from services.finance.worker import SERVICE as FINANCE
from services.intake.worker import SERVICE as INTAKE
from services.presale.worker import SERVICE as PRESALE
from services.warehouse.worker import SERVICE as WAREHOUSE
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from tests.flows.walking import ROSTER, start
from tests.helpers import T0, add_agents


@pytest.fixture
async def clock(settings: Settings, db: Pool, broker: object) -> AsyncIterator[FixedClock]:
    await add_agents(db, ROSTER)
    clock = FixedClock(T0)
    running = [
        await start(s, settings, clock) for s in (INTAKE, PRESALE, AFTERSALES, WAREHOUSE, FINANCE)
    ]
    yield clock
    for r in running:
        await r.stop()
