"""The workbench under test: the web app served by uvicorn in the test's event loop, the
desks running, and a real chromium driven by Playwright (Debian's, never a downloaded one)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from starlette.applications import Starlette

from services.flows import load_all
from shared.agents.identity import hash_password, set_password
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.web.app import create_app
from tests.helpers import T0, add_agents

CHROMIUM = os.environ.get("TICKETQ_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
PASSWORD = "correct horse battery"
# Beside the desks' roster (tests/staff.py): a second after-sales agent.
MORE_AGENTS = [("a2", "王强", ["aftersales"], ["day"])]


@dataclass
class Web:
    """The workbench served on `port`; `stop()` and `start()` again: a restarted web process
    (the same port, so open pages reconnect to it)."""

    app: Starlette
    clock: FixedClock
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = server = uvicorn.Server(config)
        self._task = task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        self.port = server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


@pytest.fixture
async def web(settings: Settings, db: Pool, desk: None) -> AsyncIterator[Web]:
    """The workbench on a free port, over this test's broker vhost and database."""
    await add_agents(db, MORE_AGENTS)
    hashed = hash_password(PASSWORD)
    async with db.acquire() as conn:
        for (agent_id,) in await conn.fetch("SELECT id FROM agents"):
            await set_password(conn, agent_id, hashed, T0)
    clock = FixedClock(T0)
    app = create_app(settings, clock=clock, flows=load_all(), secret="test-secret", pool_size=4)
    served = Web(app, clock)
    await served.start()
    yield served
    await served.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"no chromium at {CHROMIUM} (make chromium)")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


SignIn = Callable[[str], Awaitable[Page]]


@pytest.fixture
async def signed_in(web: Web, browser: Browser) -> AsyncIterator[SignIn]:
    """`page = await signed_in("a1")`: a fresh browser context signed in as that agent."""
    contexts: list[BrowserContext] = []

    async def open_as(agent_id: str) -> Page:
        context = await browser.new_context(
            base_url=web.url, viewport={"width": 1280, "height": 900}
        )
        contexts.append(context)
        page = await context.new_page()
        await page.goto("/login")
        await page.get_by_label("Agent id").fill(agent_id)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("header .me")).to_contain_text(f"({agent_id})")
        return page

    yield open_as
    for context in contexts:
        await context.close()
