"""SIGKILL the process firing timers at random points, again and again: each fires once.

The defaults keep the run short; the issue's figures are
`TIMERS_CRASH_TIMERS=10000 TIMERS_CRASH_KILLS=50`. `TIMERS_CRASH_SEED` replays a run.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.config import Settings
from shared.db import Pool
from tests.helpers import T0, settings_env, wait_until
from tests.timers.support import bulk_arm, effects, states

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMERS = int(os.environ.get("TIMERS_CRASH_TIMERS", "1000"))
KILLS = int(os.environ.get("TIMERS_CRASH_KILLS", "10"))


class FiringProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.log_path = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.timers.firing_process"],
                env={**os.environ, **settings_env(settings), "TIMERS_BATCH": "5"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"exited with {self.proc.returncode}:\n{self.log_path.read_text()}"
            )
        return True

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no clean-up of any kind
        self.proc.wait()


async def test_sigkill_at_random_points_fires_each_timer_once(
    pool: Pool, settings: Settings, tmp_path: Path
) -> None:
    seed = int(os.environ.get("TIMERS_CRASH_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    async with pool.acquire() as conn:
        await bulk_arm(conn, TIMERS, T0, T0)  # due long ago by the real clock

    async def count() -> int:
        n: int = await pool.fetchval("SELECT count(*) FROM timer_effects")
        return n

    for kill in range(KILLS):
        before = await count()
        process = FiringProcess(settings, tmp_path / "loop.log")

        deadline = time.monotonic() + 30
        while process.alive() and await count() == before:  # resumed: it fires again
            assert time.monotonic() < deadline, f"firing did not resume (seed {seed})"
            await asyncio.sleep(0.005)
        # Mid-batch or between batches: anywhere in the next few transactions.
        await asyncio.sleep(rng.uniform(0, 0.02))
        process.kill()
        assert await count() < TIMERS, f"all fired before kill {kill + 1} (seed {seed})"

    last = FiringProcess(settings, tmp_path / "loop.log")

    async def all_fired() -> bool:
        return last.alive() and await count() >= TIMERS

    try:
        await wait_until(all_fired, timeout=120, what=f"every timer to fire (seed {seed})")
    finally:
        last.kill()
    async with pool.acquire() as conn:
        assert await effects(conn) == (TIMERS, TIMERS), f"seed {seed}"
        assert await states(conn) == {"fired": TIMERS}
