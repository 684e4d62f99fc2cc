"""A firing loop as a process of its own, for the SIGKILL test.

    TICKETQ_DATABASE_URL=... python -m tests.timers.firing_process

`TIMERS_BATCH` sets its batch size (small: kills land between and inside many transactions).
"""

from __future__ import annotations

import asyncio
import os

from shared.clock import SystemClock
from shared.config import Settings
from shared.db import create_pool
from shared.logging import configure_logging
from shared.timers import TimerLoop
from tests.timers.support import KIND, count_effect


async def main() -> None:
    settings = Settings()
    pool = await create_pool(settings, size=2)
    batch = int(os.environ.get("TIMERS_BATCH", "5"))
    loop = TimerLoop({KIND: count_effect}, database_url=settings.database_url, batch=batch)
    await loop.run(pool, SystemClock())


if __name__ == "__main__":
    configure_logging("warning")
    asyncio.run(main())
