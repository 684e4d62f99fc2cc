"""The workbench in a real browser over the real broker and database."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Request, expect

from shared.config import Settings
from shared.db import Pool
from shared.tickets.contracts import ReplyArgs
from tests.staff import hand_off, new_ticket, one
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


async def test_a_refused_close_says_who_may(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    tid = await new_ticket(settings, db, "web-2")
    await hand_off(settings, db, tid, "aftersales", "check_the_parcel")
    other = await signed_in("a2")  # takes the handoff: owner now, a1 still first handler
    await other.goto(f"/tickets/{tid}")
    await other.locator("#form-claim").get_by_role("button").click()
    await expect(other.locator("#form-claim .outcome.accepted")).to_be_visible()
    await expect(other.locator("#owner")).to_contain_text("王强 (a2)")
    await other.locator("#form-close").get_by_role("button").click()
    refusal = other.locator("#form-close .outcome.refused")
    await expect(refusal).to_have_attribute("data-code", "not_first_handler")
    await expect(refusal).to_contain_text(
        "Only the first handler, 李娜 (a1), may close this ticket"
    )
    assert await db.fetchval("SELECT status FROM tickets WHERE id = $1", tid) != "closed"


async def test_bad_input_shows_field_errors_and_sends_nothing(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    tid = await new_ticket(settings, db, "web-3")
    before = await db.fetchval("SELECT count(*) FROM ticket_history WHERE ticket_id = $1", tid)
    staff = await signed_in("f1")
    await staff.goto(f"/roles/finance/refund?ticket={tid}&handoff=h-1")
    await staff.locator("input[name=amount]").fill("-5")
    await staff.get_by_role("button", name="Refund").click()
    await expect(staff.locator(".error[data-field=amount]")).to_be_visible()
    await expect(staff.locator(".error[data-field=reason]")).to_contain_text("required")
    await expect(staff.locator(".outcome")).to_have_count(0)
    after = await db.fetchval("SELECT count(*) FROM ticket_history WHERE ticket_id = $1", tid)
    assert after == before
    assert await db.fetchval("SELECT count(*) FROM refunds") == 0


async def test_warehouse_cannot_open_the_refund_form_nor_finance_approve(
    web: Web, signed_in: SignIn
) -> None:
    staff = await signed_in("w1")
    answer = await staff.goto("/roles/finance/refund")
    assert answer is not None and answer.status == 403
    await expect(staff.get_by_role("alert")).to_contain_text(
        "The refund form is for finance staff: 赵仓 (w1) works as warehouse"
    )
    await expect(staff.locator("input[name=amount]")).to_have_count(0)
    finance = await signed_in("f1")
    approval = await finance.goto("/roles/finance/approve_payout")
    assert approval is not None and approval.status == 403
    await expect(finance.get_by_role("alert")).to_contain_text("Only a supervisor may")


async def test_a_post_without_the_session_csrf_token_is_refused(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    tid = await new_ticket(settings, db, "web-4")
    agent = await signed_in("a1")
    answer = await agent.request.post(f"/tickets/{tid}/act/close", form={"csrf": "forged"})
    assert answer.status == 403
    assert "CSRF" in await answer.text()
    assert await db.fetchval("SELECT status FROM tickets WHERE id = $1", tid) != "closed"


async def test_only_a_supervisor_reveals_personal_data_and_it_is_recorded(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    tid = await new_ticket(settings, db, "web-5")
    await db.execute(
        """UPDATE tickets SET customer = customer || '{"phone": "13800138000"}' WHERE id = $1""",
        tid,
    )
    agent = await signed_in("a1")
    await agent.goto(f"/tickets/{tid}")
    await expect(agent.locator("#head")).not_to_contain_text("13800138000")
    await expect(agent.get_by_role("button", name="Reveal personal data")).to_have_count(0)
    csrf = await agent.locator("input[name=csrf]").first.get_attribute("value")
    answer = await agent.request.post(f"/tickets/{tid}/reveal", form={"csrf": csrf or ""})
    assert answer.status == 403

    boss = await signed_in("s1")
    await boss.goto(f"/tickets/{tid}")
    await boss.get_by_role("button", name="Reveal personal data").click()
    await expect(boss.locator("#revealed")).to_contain_text("13800138000")
    reveals = await db.fetch("SELECT * FROM pii_reveals WHERE ticket_id = $1", tid)
    assert [r["agent_id"] for r in reveals] == ["s1"]


async def test_a_dropped_stream_resumes_without_missing_a_change(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    tid = await new_ticket(settings, db, "web-6")
    agent = await signed_in("a1")
    streams: list[Request] = []
    agent.on("request", lambda r: streams.append(r) if "/events" in r.url else None)
    await agent.goto(f"/tickets/{tid}")
    status = agent.locator("#live-status")
    await expect(status).to_have_text("live")

    async def reply(text: str) -> int:
        answer = await one(settings, tid, "a1", ReplyArgs(text=text))
        assert answer.accepted, answer
        seq: int = await db.fetchval(
            "SELECT max(id) FROM ticket_history WHERE ticket_id = $1 AND action = 'replied'", tid
        )
        return seq

    seen = await reply("您好, 我们看一下")
    await expect(agent.locator(f"#live-log li[data-seq='{seen}']")).to_have_count(1)

    # The web process restarts: the stream drops, and the ticket changes meanwhile.
    await web.stop()
    await expect(status).to_have_text("reconnecting…")
    missed = await reply("已为您登记退货")
    await web.start()
    await expect(status).to_have_text("live")
    await expect(agent.locator(f"#live-log li[data-seq='{missed}']")).to_have_count(1)
    await expect(agent.locator("#timeline .action", has_text="replied")).to_have_count(2)
    # The browser's own reconnect said where it was (htmx-extensions #184 was this, missing).
    resumed = [await r.header_value("last-event-id") for r in streams[1:]]
    assert str(seen) in resumed, resumed


async def test_a_wrong_password_is_refused_and_signing_out_ends_the_session(
    web: Web, signed_in: SignIn, browser: Browser
) -> None:
    context = await browser.new_context(base_url=web.url)
    page = await context.new_page()
    await page.goto("/me")
    await expect(page).to_have_url(re.compile(r"/login\?next=/me$"))
    await page.get_by_label("Agent id").fill("a1")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("bad_credentials")
    await context.close()

    agent = await signed_in("a1")
    await agent.goto("/me")
    await agent.get_by_role("button", name="Sign out").click()
    await expect(agent).to_have_url(re.compile(r"/login$"))
    await agent.goto("/me")
    await expect(agent).to_have_url(re.compile(r"/login\?next=/me$"))


async def test_a_new_ticket_appears_on_the_agents_page_without_a_reload(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    agent = await signed_in("a1")
    await agent.goto("/me")
    await expect(agent.locator("#live-status")).to_have_text("live")
    await expect(agent.locator("#owned tr[data-ticket]")).to_have_count(0)
    tid = await new_ticket(settings, db, "web-7")
    await expect(agent.locator(f"#owned tr[data-ticket='{tid}']")).to_be_visible()
    await expect(agent.locator(f"#live-log li[data-ticket='{tid}']")).not_to_have_count(0)


async def test_sla_countdowns_run_from_the_servers_due_times(
    web: Web, signed_in: SignIn, settings: Settings, db: Pool
) -> None:
    tid = await new_ticket(settings, db, "web-8")  # first response due in 30 s (business)
    agent = await signed_in("a1")
    await agent.clock.install()
    await agent.goto("/me")
    countdown = agent.locator(f"#owned tr[data-ticket='{tid}'] .countdown")
    await expect(countdown).to_have_text("0m30s")
    await agent.clock.run_for(12_000)
    await expect(countdown).to_have_text("0m18s")
    await agent.clock.run_for(20_000)
    await expect(countdown).to_have_text("-0m02s")
    await expect(countdown).to_have_class(re.compile(r"\boverdue\b"))
