"""Every path walked on the real broker and database with real commands (SPEC §6, §7): the
desks, warehouse and finance running in this process, time moved by a FixedClock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeAlias

import pytest

from services.finance.contracts import ApprovePayoutArgs, InvoiceArgs, PayoutArgs, RefundArgs
from services.warehouse.contracts import (
    OrderChangeArgs,
    PickUpArgs,
    ReceiveReturnArgs,
    TrackReturnArgs,
    UrgeShipmentArgs,
)
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.tickets.contracts import (
    ClaimArgs,
    CloseArgs,
    RecordResultArgs,
    StepArgs,
)
from shared.tickets.roles import TicketKind
from tests.flows.walking import (
    by_the_clock,
    flow,
    handoff_of,
    history,
    opened,
    send,
    walk,
)
from tests.helpers import T0, wait_until
from tests.staff import ask


async def test_wrong_item_shop_error_compensation_approved_above_the_threshold(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.WRONG_ITEM, "ww-wrong-1", subject="发错货了")
    at = await flow(db, tid)
    assert (at["flow"], at["state"], at["type"]) == ("wrong_item v1", "ask_photos", "wait")
    assert at["timeout"]["timer"] == "customer_reply_24h"

    refused = await send(settings, tid, "a1", StepArgs(answer="refund_now"))
    assert (refused.accepted, refused.code) == (False, "not_allowed_by_flow")
    assert "allowed answers: photos_received" in refused.message

    await walk(settings, tid, "a1", "photos_received", "shop_error")
    await walk(settings, tid, "a1", "accepted", note="80.00 agreed")
    payout = await handoff_of(db, tid)
    assert (await flow(db, tid))["waits_for"] == "finance: payout"

    above = PayoutArgs(handoff_id=payout, amount=Decimal("80.00"))
    unapproved = await send(settings, tid, "f1", above)
    assert (unapproved.accepted, unapproved.code) == (False, "payout_needs_approval")
    approval = ApprovePayoutArgs(handoff_id=payout, amount=Decimal("80.00"))
    assert (await send(settings, tid, "s1", approval)).accepted
    assert (await flow(db, tid))["state"] == "payout"  # an approval does not finish the task
    assert (await send(settings, tid, "f1", above)).accepted

    back = await flow(db, tid)
    assert (back["state"], back["answers"]) == ("paid", ["confirmed"])
    await walk(settings, tid, "a1", "confirmed")
    done = await flow(db, tid)
    assert (done["type"], done["end_reason"]) == ("end", "compensation paid")
    row = await db.fetchrow("SELECT status, state FROM tickets WHERE id = $1", tid)
    assert row is not None
    assert (row["status"], row["state"]["resolution"]) == ("resolved", "compensation paid")
    assert (await send(settings, tid, "a1", CloseArgs())).accepted

    moves = [
        (h["detail"]["left"], h["detail"]["answer"], h["detail"]["entered"])
        for h in await history(db, tid)
    ]
    assert moves == [
        ("ask_photos", "photos_received", "verify"),
        ("verify", "shop_error", "offer_compensation"),
        ("offer_compensation", "accepted", "payout"),
        ("paid", "confirmed", "compensated"),
    ]
    (result,) = await history(db, tid, "result_recorded")
    assert result["detail"]["flow"]["entered"] == "paid"


async def test_wrong_item_compensation_refused_return_and_refund(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.WRONG_ITEM, "ww-wrong-2", subject="漏发了")
    await walk(settings, tid, "a1", "photos_received", "shop_error", "refused")
    pick_up = await handoff_of(db, tid)
    for args in (
        PickUpArgs(handoff_id=pick_up, carrier="SF", tracking_number="SF100"),
        TrackReturnArgs(handoff_id=pick_up, status="delivered"),
        ReceiveReturnArgs(handoff_id=pick_up, inspection="wrong_item"),
    ):
        reply = await send(settings, tid, "w1", args)
        assert reply.accepted, reply
    assert (await flow(db, tid))["state"] == "verify_return"
    await walk(settings, tid, "a1", "verified")
    refund = await handoff_of(db, tid)
    assert refund != pick_up
    reply = await send(
        settings, tid, "f1", RefundArgs(handoff_id=refund, amount=Decimal("59.00"), reason="错发")
    )
    assert reply.accepted, reply
    await walk(settings, tid, "a1", "told")
    assert (await flow(db, tid))["end_reason"] == "returned and refunded"


async def test_wrong_item_not_the_shops_error_excessive_demand_waits_for_the_platform(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.WRONG_ITEM, "ww-wrong-3", subject="发错货")
    await walk(settings, tid, "a1", "photos_received", "not_shop_error", "not_accepted")
    await walk(settings, tid, "a1", "excessive", note="要求全额退款再赔三倍")
    waiting = await flow(db, tid)
    assert (waiting["state"], waiting["timeout"]["timer"]) == (
        "platform_intervention",
        "platform_ruling_72h",
    )
    early = await send(settings, tid, "a1", StepArgs(answer="timeout"))
    assert (early.accepted, early.code) == (False, "not_allowed_by_flow")
    clock.advance(timedelta(hours=72))
    await by_the_clock(db, tid, clock)
    await walk(settings, tid, "a1", "chased", "ruled_for_shop", "told")
    assert (await flow(db, tid))["end_reason"] == "the platform ruled for the shop"


async def test_wrong_item_otherwise_the_supervisor_decides(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.WRONG_ITEM, "ww-wrong-4", subject="发错货")
    await walk(settings, tid, "a1", "photos_received", "not_shop_error", "not_accepted")
    await walk(settings, tid, "a1", "otherwise")
    decision = await handoff_of(db, tid)
    decided = RecordResultArgs(handoff_id=decision, outcome="done", data={"offer": "coupon 20"})
    assert (await send(settings, tid, "s1", decided)).accepted
    await walk(settings, tid, "a1", "settled")
    assert (await flow(db, tid))["end_reason"] == "settled as the supervisor decided"


async def test_inquiry_no_deal_records_a_loss_reason_from_the_list(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.INQUIRY, "ww-inq-1", paid=False)
    assert await db.fetchval("SELECT owner_agent_id FROM tickets WHERE id = $1", tid) == "p1"
    await walk(settings, tid, "p1", "need_understood")
    at = await flow(db, tid)
    assert "price_too_high" in at["loss_reasons"]
    refused = await send(settings, tid, "p1", StepArgs(answer="no_deal", reason="bored"))
    assert (refused.accepted, refused.code) == (False, "not_allowed_by_flow")
    await walk(settings, tid, "p1", "no_deal", reason="price_too_high", note="嫌贵, 比别家贵5元")
    (lost,) = (await history(db, tid))[-1:]
    assert lost["reason"] == "price_too_high"
    assert lost["detail"]["entered"] == "lost"
    resolution = await db.fetchval("SELECT state->>'resolution' FROM tickets WHERE id = $1", tid)
    assert resolution == "inquiry: lost (price_too_high); 嫌贵, 比别家贵5元"


async def test_inquiry_deal(settings: Settings, db: Pool, clock: FixedClock) -> None:
    tid = await opened(settings, db, TicketKind.INQUIRY, "ww-inq-2", paid=False)
    await walk(settings, tid, "p1", "need_understood", "deal", "farewell")
    assert (await flow(db, tid))["end_reason"] == "deal"


async def test_unpaid_reminder_im_sms_phone_each_recorded_with_its_time_then_paid(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.UNPAID_REMINDER, "order-unpaid-1", paid=False)
    await walk(settings, tid, "p1", "reminded")  # IM, at T0
    clock.advance(timedelta(hours=2))
    await by_the_clock(db, tid, clock)
    await walk(settings, tid, "p1", "reminded")  # SMS, at T0 + 2 h
    clock.advance(timedelta(hours=4))
    await by_the_clock(db, tid, clock)
    await walk(settings, tid, "p1", "answered")  # phone, at T0 + 6 h
    await walk(settings, tid, "p1", "will_pay", note="工资还没发")
    clock.advance(timedelta(hours=24))
    chase = await flow(db, tid)
    assert chase["state"] == "wait_unpaid_24h" and chase["timeout"]["timer"] == "unpaid_order_24h"
    await by_the_clock(db, tid, clock)
    await walk(settings, tid, "p1", "paid", "thanked")
    assert (await flow(db, tid))["end_reason"] == "paid"
    steps = [
        (h["detail"]["left"], h["detail"]["answer"], h["at"] - T0) for h in await history(db, tid)
    ]
    assert steps[:6] == [
        ("remind_im", "reminded", timedelta(0)),
        ("wait_after_im", "timeout", timedelta(hours=2)),
        ("remind_sms", "reminded", timedelta(hours=2)),
        ("wait_after_sms", "timeout", timedelta(hours=6)),
        ("remind_phone", "answered", timedelta(hours=6)),
        ("why_not_paid", "will_pay", timedelta(hours=6)),
    ]


async def signed(db: Pool, tid: str, days_ago: float, clock: FixedClock) -> None:
    """The order was signed for `days_ago` days ago (as an upstream event would record it)."""
    at = (clock.now() - timedelta(days=days_ago)).isoformat()
    await db.execute(
        "UPDATE tickets SET order_data = order_data || jsonb_build_object('signed_at', $2::text)"
        " WHERE id = $1",
        tid,
        at,
    )


@pytest.mark.parametrize(
    ("answer", "signed_days_ago", "refused", "then", "ends"),
    [
        ("within_window", 3, "outside_window", "agree_return", "returned and refunded"),
        ("shop_fault", 30, "within_window", "agree_return", "returned and refunded"),
        (
            "outside_window",
            8,
            "within_window",
            "decline_return",
            "return declined: outside the 7-day window",
        ),
    ],
)
async def test_return_checked_against_the_7_day_window_from_signing(
    settings: Settings,
    db: Pool,
    clock: FixedClock,
    answer: str,
    signed_days_ago: int,
    refused: str,
    then: str,
    ends: str,
) -> None:
    tid = await opened(settings, db, TicketKind.RETURN, f"ww-ret-{answer}", subject="退货")
    await signed(db, tid, signed_days_ago, clock)
    await walk(settings, tid, "a1", "returning")
    wrong = await send(settings, tid, "a1", StepArgs(answer=refused))
    assert (wrong.accepted, wrong.code) == (False, "not_allowed_by_flow")
    assert "it needs signed_at" in wrong.message
    await walk(settings, tid, "a1", answer)
    assert (await flow(db, tid))["state"] == then
    if then == "decline_return":
        await walk(settings, tid, "a1", "accepted")
    else:
        await walk(settings, tid, "a1", "sent_back")
        received = ReceiveReturnArgs(handoff_id=await handoff_of(db, tid), inspection="passed")
        assert (await send(settings, tid, "w1", received)).accepted
        await walk(settings, tid, "a1", "refund")
        refund = RefundArgs(
            handoff_id=await handoff_of(db, tid), amount=Decimal("59.00"), reason="七天无理由"
        )
        assert (await send(settings, tid, "f1", refund)).accepted
        await walk(settings, tid, "a1", "told")
    assert (await flow(db, tid))["end_reason"] == ends


# The other after-sales paths, one walk each: ("a1", answer) is a step by the first handler,
# (agent, make_args) the operation (or result) that finishes the flow's open handoff, a timedelta
# moves the clock. Each ends with the end's resolution.
Move: TypeAlias = tuple[str, Any] | timedelta


def _result(handoff_id: str) -> RecordResultArgs:
    return RecordResultArgs(handoff_id=handoff_id, outcome="done", data={"tracking": "SF9"})


PATHS: dict[TicketKind, tuple[list[Move], str]] = {
    TicketKind.LOGISTICS: (
        [
            ("a1", "slow_delivery"),
            ("a1", "past_due"),
            ("a1", "accepted"),
            ("f1", lambda h: PayoutArgs(handoff_id=h, amount=Decimal("20.00"))),
            ("a1", "confirmed"),
        ],
        "delivered and confirmed",
    ),
    TicketKind.URGE_SHIPMENT: (
        [
            timedelta(hours=1),  # paid 3 days ago: now more than 72 h
            ("a1", "over_72h_unshipped"),
            ("a1", "gift_offered"),
            ("w1", lambda h: UrgeShipmentArgs(handoff_id=h, delay_reason="面料缺货, 周五补到")),
            ("a1", "reported"),
        ],
        "shipment urged, delay reported",
    ),
    TicketKind.ORDER_CHANGE: (
        [
            ("a1", "not_printed"),
            ("w1", lambda h: OrderChangeArgs(handoff_id=h, change="颜色换成蓝色")),
            ("a1", "told"),
        ],
        "order changed",
    ),
    TicketKind.QUALITY: (
        [
            ("a1", "photos_received"),
            ("a1", "repairable"),
            ("w1", _result),
            ("a1", "willing"),
            timedelta(hours=48),
            ("a1", "timeout"),
            ("a1", "works"),
            ("a1", "asked"),
        ],
        "repaired with a part",
    ),
    TicketKind.EXCHANGE: (
        [
            ("a1", "agreed"),
            ("a1", "sent_back"),
            ("w1", lambda h: ReceiveReturnArgs(handoff_id=h, inspection="passed")),
            ("a1", "ship"),
            ("w1", _result),
            ("a1", "told"),
        ],
        "exchanged",
    ),
    TicketKind.COMPENSATION: (
        [
            ("a1", "photos_received"),
            ("a1", "minor"),
            ("a1", "agreed"),
            ("f1", lambda h: PayoutArgs(handoff_id=h, amount=Decimal("30.00"))),
            ("a1", "told"),
        ],
        "compensation paid",
    ),
    TicketKind.INVOICE: (
        [
            ("a1", "not_received"),
            timedelta(hours=72),
            ("a1", "timeout"),
            ("a1", "received"),
            (
                "f1",
                lambda h: InvoiceArgs(
                    handoff_id=h,
                    title="某某公司",
                    amount=Decimal("59.00"),
                    quantity=1,
                    einvoice_id="EI-1",
                ),
            ),
            ("a1", "sent"),
        ],
        "invoice issued and sent",
    ),
    TicketKind.OUT_OF_STOCK: (
        [
            ("a1", "refund"),
            ("f1", lambda h: RefundArgs(handoff_id=h, amount=Decimal("59.00"), reason="缺货")),
            ("a1", "told"),
        ],
        "refunded (out of stock)",
    ),
    TicketKind.PLATFORM_COMPLAINT: (
        [
            ("a1", "not_willing"),
            ("a1", "not_at_fault"),
            ("a1", "ruled_for_shop"),
            ("a1", "told"),
        ],
        "the platform ruled",
    ),
}


@pytest.mark.parametrize("kind", list(PATHS), ids=str)
async def test_after_sales_path(
    settings: Settings, db: Pool, clock: FixedClock, kind: TicketKind
) -> None:
    tid = await opened(settings, db, kind, f"ww-{kind}", subject="售后问题")
    if kind is not TicketKind.URGE_SHIPMENT:  # an invoice needs the receipt; urging does not
        await signed(db, tid, 3, clock)
    script, ends = PATHS[kind]
    for move in script:
        if isinstance(move, timedelta):
            clock.advance(move)
            continue
        actor, what = move
        if what == "timeout":  # the shop clock's move, when the FixedClock passes the wait
            await by_the_clock(db, tid, clock)
            continue
        args = StepArgs(answer=what) if isinstance(what, str) else what(await handoff_of(db, tid))
        reply = await send(settings, tid, actor, args)
        assert reply.accepted, (move, reply)
    done = await flow(db, tid)
    assert (done["type"], done["end_reason"]) == ("end", ends)
    assert await db.fetchval("SELECT status FROM tickets WHERE id = $1", tid) == "resolved"


async def test_a_move_sent_twice_is_applied_once(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.WRONG_ITEM, "ww-twice", subject="发错货")
    # version 1 opened, 2 assigned, 3 the first reply, 4 the move
    answers = await ask(settings, tid, "a1", StepArgs(answer="photos_received"), copies=2)
    assert [(a.accepted, a.version) for a in answers] == [(True, 4), (True, 4)]
    assert len(await history(db, tid)) == 1
    assert (await flow(db, tid))["state"] == "verify"


async def test_urge_shipment_gift_only_after_72_hours_unshipped(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.URGE_SHIPMENT, "ww-urge", subject="还没发货")
    early = await send(settings, tid, "a1", StepArgs(answer="over_72h_unshipped"))
    assert (early.accepted, early.code) == (False, "not_allowed_by_flow")  # paid exactly 72 h ago
    assert "it needs paid_at more than 72h ago and no shipped_at" in early.message
    clock.advance(timedelta(minutes=1))
    await walk(settings, tid, "a1", "over_72h_unshipped")


async def test_inquiry_transfer_to_after_sales_keeps_the_pre_sale_agent_tracking(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.INQUIRY, "ww-inq-3", paid=False)
    await walk(settings, tid, "p1", "after_sales_question", note="上次买的杯子有裂纹")
    task = await handoff_of(db, tid)
    assert (await send(settings, tid, "a1", ClaimArgs())).accepted  # after-sales takes the task
    answered = RecordResultArgs(handoff_id=task, outcome="done", data={"answer": "补发一个"})
    assert (await send(settings, tid, "a1", answered)).accepted
    row = await db.fetchrow(
        "SELECT owner_agent_id, first_handler_id FROM tickets WHERE id = $1", tid
    )
    assert row is not None and (row["owner_agent_id"], row["first_handler_id"]) == ("p1", "p1")
    assert (await flow(db, tid))["state"] == "tell_answer"
    await walk(settings, tid, "p1", "told")
    assert (await flow(db, tid))["end_reason"] == "answered by after-sales"


async def test_a_wait_that_times_out_moves_the_flow_by_itself_once(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    """ask_photos waits 24 h for the customer's photos (a timer of the shop clock armed when
    the flow started there); then the system moves it to no_photos, and `reminded` waits again."""
    tid = await opened(settings, db, TicketKind.WRONG_ITEM, "ww-wait", subject="发错货")
    assert (await flow(db, tid))["state"] == "ask_photos"
    clock.advance(timedelta(hours=24))

    async def timed_out() -> bool:
        return bool((await flow(db, tid))["state"] == "no_photos")

    await wait_until(timed_out, what="the wait to time out")
    [move] = [h for h in await history(db, tid) if h["detail"]["answer"] == "timeout"]
    assert move["actor_id"] == "system" and move["detail"]["entered"] == "no_photos"
    waits = await db.fetchval(
        "SELECT count(*) FROM timers WHERE ticket_id = $1 AND kind = 'flow_timeout'", tid
    )
    assert waits == 1  # no_photos asks: nothing waits now
    assert (await walk(settings, tid, "a1", "reminded"))[0].accepted  # waits again, re-armed
    pending = await db.fetchval(
        """SELECT count(*) FROM timers WHERE ticket_id = $1 AND kind = 'flow_timeout'
              AND state = 'pending'""",
        tid,
    )
    assert pending == 1
