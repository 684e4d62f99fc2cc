"""The workbench in a real browser over the real broker and database."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from shared.config import Settings
from shared.db import Pool
from tests.staff import new_ticket
from tests.web.conftest import SignIn, Web

pytestmark = pytest.mark.slow


async def test_hand_off_and_see_the_result_live(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    tid = await new_ticket(settings, db, "web-1")
    agent = await signed_in("a1")
    await agent.goto("/me")
    await expect(agent.locator(f"#owned [data-ticket='{tid}']")).to_be_visible()
    await agent.locator(f"#owned a[href='/tickets/{tid}']").click()
    await expect(agent.locator("#live-status")).to_have_text("live")

    form = agent.locator("#form-hand_off")
    await form.locator("select[name=role]").select_option("warehouse")
    await form.locator("input[name=action]").fill("receive_return")
    await form.get_by_role("button").click()
    await expect(agent.locator("#form-hand_off .outcome.accepted")).to_be_visible()
    row = agent.locator("#handoffs tr[data-handoff]")
    await expect(row.locator(".state")).to_have_text("waiting for warehouse")

    staff = await signed_in("w1")
    await staff.goto("/roles/warehouse")
    await staff.locator("#tasks a.primary", has_text="receive return").click()
    await staff.locator("select[name=inspection]").select_option("passed")
    await staff.get_by_role("button", name="Receive return").click()
    await expect(staff.locator(".outcome.accepted")).to_contain_text("return received")

    # The first page shows the result without a reload.
    await expect(row.locator(".state")).to_have_text("done")
    await expect(row.locator(".result")).to_contain_text("赵仓 (w1)")
