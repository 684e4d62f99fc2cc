"""The workbench's pages as each role sees them (screenshots into TICKETQ_SCREENSHOTS, when
set: docs/screenshots/ is made so)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from services.intake.client import publish_ticket
from shared.config import Settings
from shared.db import Pool
from shared.tickets.contracts import HandOffArgs
from tests.helpers import contact, wait_until
from tests.staff import hand_off, new_ticket, one
from tests.web.conftest import SignIn, Web

pytestmark = pytest.mark.slow

SHOTS = os.environ.get("TICKETQ_SCREENSHOTS")


async def shot(page: Page, name: str) -> None:
    if SHOTS:  # Playwright makes the folder
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def test_each_role_sees_its_page(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    await db.execute("UPDATE agents SET online = false WHERE id = 'a2'")  # a1 gets them all
    tid = await new_ticket(settings, db, "web-p1")
    handoff = await hand_off(settings, db, tid, "warehouse", "receive_return")
    payout = await one(
        settings,
        tid,
        "a1",
        HandOffArgs(role="finance", action="payout", data={"amount": "80.00"}),
    )
    assert payout.accepted, payout
    away = await new_ticket(settings, db, "web-p2")
    # A pre-sale question while no pre-sale agent is on the roster: it waits in the queue.
    await publish_ticket(settings.amqp_url, contact("web-p3", subject="这个有货吗?"))

    async def queued() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM tickets WHERE external_id = 'web-p3'"))

    await wait_until(queued, what="the pre-sale ticket")

    agent = await signed_in("a1")
    await agent.goto("/me")
    await expect(agent.locator(f"#owned [data-ticket='{away}'] .countdown")).to_be_visible()
    await expect(agent.locator(f"#tracked [data-ticket='{tid}'] .waiting")).to_have_text("2")
    await shot(agent, "agent")
    await agent.goto(f"/tickets/{tid}")
    await expect(agent.locator("#handoffs tr[data-handoff]")).to_have_count(2)
    await expect(agent.locator("#timeline .action", has_text="handed_off")).to_have_count(2)
    await shot(agent, "ticket")

    staff = await signed_in("w1")
    await staff.goto("/roles/warehouse")
    await expect(staff.locator(f"#tasks tr[data-handoff='{handoff}']")).to_be_visible()
    await shot(staff, "warehouse")

    await db.execute("UPDATE agents SET online = (id <> 'a1') WHERE id IN ('a1', 'a2')")
    boss = await signed_in("s1")
    await boss.goto("/board")
    await expect(boss.locator("#queues tr[data-role='presale'] .depth")).to_have_text("1")
    await expect(boss.locator("#approvals")).to_contain_text("80.00")
    row = boss.locator(f"#absent tr[data-ticket='{away}']")
    await expect(row).to_contain_text("offline")
    await shot(boss, "board")
    await row.locator("input[name=new_first_handler_id]").fill("a2")
    await row.locator("textarea[name=reason], input[name=reason]").fill("李娜 offline")
    await row.get_by_role("button").click()
    await expect(boss.locator(f"#absent tr[data-ticket='{away}']")).to_have_count(0)
    assert await db.fetchval("SELECT first_handler_id FROM tickets WHERE id = $1", away) == "a2"

    await boss.goto("/ops")
    await expect(boss.locator("#ops")).to_contain_text("warehouse")
    await shot(boss, "ops")
