"""The warehouse's operations against the real broker and database (SPEC §7, §10)."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractChannel

from services.warehouse.contracts import (
    InterceptArgs,
    PickUpArgs,
    ReshipArgs,
    ShipArgs,
    StockLine,
)
from shared.config import Settings
from shared.db import Pool
from tests.helpers import take_all, wait_until
from tests.staff import Cli, Run, ask, count, hand_off, has_messages, new_ticket, one, refund


async def test_one_shipment_per_task_and_reship_waits_for_the_interception(
    settings: Settings, db: Pool, desk: None
) -> None:
    await db.execute("INSERT INTO stock (sku, on_hand) VALUES ('CUP-1', 3)")
    tid = await new_ticket(settings, db, "ship-1")
    h = await hand_off(settings, db, tid, "warehouse", "ship")
    line = [StockLine(sku="CUP-1", quantity=2)]
    ship = ShipArgs(handoff_id=h, carrier="SF", tracking_number="SF1", items=line)
    stranger = await one(settings, tid, "f1", ship)
    assert stranger.code == "not_owner"
    wrong = await one(settings, tid, "w1", refund(h, "1.00"))
    assert wrong.code == "invalid_command"  # a refund is no warehouse task
    assert (await one(settings, tid, "w1", ship)).accepted
    again = await one(settings, tid, "w1", ship.model_copy(update={"tracking_number": "SF2"}))
    assert again.code == "invalid_transition"
    assert await count(db, "SELECT count(*) FROM shipments") == 1
    assert await db.fetchval("SELECT on_hand FROM stock WHERE sku = 'CUP-1'") == 1

    h2 = await hand_off(settings, db, tid, "warehouse", "intercept_and_reship")
    reship = ReshipArgs(handoff_id=h2, carrier="SF", tracking_number="SF3")
    early = await one(settings, tid, "w1", reship)
    assert (early.code, early.message) == (
        "interception_not_confirmed",
        "the interception is not requested; reship once the carrier confirms it",
    )
    for confirmed in (False, True):
        step = InterceptArgs(handoff_id=h2, mode="intercept", confirmed=confirmed)
        assert (await one(settings, tid, "w1", step)).accepted
    shipped = await one(settings, tid, "w1", reship)
    assert shipped.accepted and shipped.data["tracking_number"] == "SF3"
    kinds = await db.fetch("SELECT kind FROM shipments ORDER BY id")
    assert [r["kind"] for r in kinds] == ["ship", "reship"]
    assert await db.fetchval("SELECT on_hand FROM stock WHERE sku = 'CUP-1'") == 1


async def test_two_replicas_shipping_the_last_unit_at_once_ship_it_once(
    settings: Settings, db: Pool, desk: None
) -> None:
    await db.execute("INSERT INTO stock (sku, on_hand) VALUES ('CUP-1', 1)")
    tickets = [await new_ticket(settings, db, f"last-{i}") for i in range(2)]
    tasks = [await hand_off(settings, db, tid, "warehouse", "ship") for tid in tickets]
    line = [StockLine(sku="CUP-1", quantity=1)]
    replies = await asyncio.gather(
        *(
            one(
                settings,
                tid,
                "w1",
                ShipArgs(handoff_id=h, carrier="SF", tracking_number=f"SF-{h}", items=line),
            )
            for tid, h in zip(tickets, tasks, strict=True)
        )
    )
    assert sorted(str(r.code) for r in replies) == ["None", "stock_would_go_negative"]
    assert await db.fetchval("SELECT on_hand FROM stock WHERE sku = 'CUP-1'") == 0
    assert await count(db, "SELECT count(*) FROM shipments") == 1


async def test_each_roles_operations_run_only_in_its_own_worker(
    settings: Settings, db: Pool, desk: None, channel: AbstractChannel
) -> None:
    """A warehouse operation published to finance's queue is refused there (dead-lettered
    `unknown_type`, nothing written); the same operation on its own queue is applied."""
    tid = await new_ticket(settings, db, "route-1")
    h = await hand_off(settings, db, tid, "warehouse", "pick_up")
    pick_up = PickUpArgs(handoff_id=h, carrier="SF", tracking_number="SF9")
    misrouted = asyncio.create_task(ask(settings, tid, "w1", pick_up, queue="finance"))
    await wait_until(lambda: has_messages(channel, "finance.dlq"), what="the refusal")
    misrouted.cancel()
    [dead] = await take_all(channel, "finance.dlq")
    assert dead.headers["tq-dl-reason"] == "unknown_type"
    assert "warehouse.operation" in str(dead.headers["tq-dl-error"])
    assert await count(db, "SELECT count(*) FROM returns") == 0

    assert (await one(settings, tid, "w1", pick_up)).accepted  # to `warehouse`, by the catalogue
    assert await count(db, "SELECT count(*) FROM returns") == 1


async def test_staff_adjust_stock_by_hand_with_a_reason_never_below_zero(
    db: Pool, desk: None, cli: Cli
) -> None:
    async def adjust(actor: str, delta: int, reason: str = "盘点") -> Run:
        return await cli(
            "warehouse", "adjust-stock", "--sku", "CUP-9", "--delta", str(delta),
            "--reason", reason, "--as", actor,
        )  # fmt: skip

    added = await adjust("w1", 5)
    assert (added.exit_code, added.stdout) == (0, "CUP-9: +5, on hand 5 (盘点)\n")
    too_many = await adjust("w1", -6, "破损")
    assert too_many.exit_code == 1 and "stock_would_go_negative" in too_many.output
    finance = await adjust("f1", 1)
    assert finance.exit_code == 1 and "not_warehouse" in finance.output
    assert (await adjust("w1", -2, "货架破损")).exit_code == 0
    rows = await db.fetch(
        "SELECT delta, reason, note, by_agent FROM stock_movements WHERE sku = 'CUP-9' ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        (5, "adjust", "盘点", "w1"),
        (-2, "adjust", "货架破损", "w1"),
    ]
    assert await db.fetchval("SELECT on_hand FROM stock WHERE sku = 'CUP-9'") == 3
