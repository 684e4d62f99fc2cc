"""A `ticketq` invocation for the calendar's integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner, Result

from shared.cli.main import app
from shared.config import Settings, get_settings

# The CLI's clock: Monday 2026-11-23 10:00 in Shanghai.
CLI_NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

Cli = Callable[..., Awaitable[Result]]


@pytest.fixture
def cli(settings: Settings) -> Cli:
    """`await cli("calendar", "show")`: one `ticketq` run against this test's database."""

    async def invoke(*args: str) -> Result:
        env = {
            "TICKETQ_AMQP_URL": settings.amqp_url,
            "TICKETQ_DATABASE_URL": settings.database_url,
            "TICKETQ_CLOCK_START": CLI_NOW.isoformat(),
        }

        def call() -> Result:
            get_settings.cache_clear()  # a process reads its environment once; we are many
            try:
                return CliRunner().invoke(app, list(args), env=env)
            finally:
                get_settings.cache_clear()

        return await asyncio.to_thread(call)

    return invoke
