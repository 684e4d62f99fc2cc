"""Finance's operations, and a whole return across warehouse and finance, against the real
broker and database (SPEC §7, §10)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from aio_pika.abc import AbstractChannel

from services.aftersales.worker import SERVICE as AFTERSALES
from services.finance.contracts import ApprovePayoutArgs, InvoiceArgs, PayoutArgs
from services.intake.worker import SERVICE as INTAKE
from services.warehouse.contracts import (
    PickUpArgs,
    ReceiveReturnArgs,
    StockLine,
    TrackReturnArgs,
)
from shared.config import Settings
from shared.db import Pool
from shared.messaging.envelope import Contract
from shared.tickets.contracts import CommandReply, HandOffArgs
from tests.helpers import T0, WorkerProcesses, depth, take_all, wait_until
from tests.staff import (
    Cli,
    add_roster,
    ask,
    count,
    hand_off,
    has_messages,
    ledger_rows,
    new_ticket,
    one,
    refund,
    start_all,
    ticket_state,
)


async def test_ten_deliveries_to_two_finance_replicas_make_one_refund_and_one_result(
    settings: Settings, db: Pool, desk: None
) -> None:
    tid = await new_ticket(settings, db, "dup-1")
    h = await hand_off(settings, db, tid, "finance", "refund")

    answers = await ask(settings, tid, "f1", refund(h, "59.00"), message_id="dup-m1", copies=10)

    assert len(answers) == 10
    assert all(a.accepted for a in answers), answers[0]
    assert {a.data["refund_id"] for a in answers} == {f"RF-{h}"}
    assert await count(db, "SELECT count(*) FROM refunds") == 1
    assert await db.fetchval("SELECT refunded FROM order_payments") == Decimal("59.00")
    assert await count(db, "SELECT count(*) FROM inbox WHERE message_id = 'dup-m1'") == 1
    history = await db.fetch(
        "SELECT action FROM ticket_history WHERE ticket_id = $1 AND action = 'result_recorded'", tid
    )
    assert len(history) == 1
    [handoff] = (await ticket_state(db, tid))["handoffs"]
    assert handoff["result"]["outcome"] == "done"
    assert handoff["result"]["data"]["refund_id"] == f"RF-{h}"
    row = await db.fetchrow("SELECT owner_agent_id, status FROM tickets WHERE id = $1", tid)
    assert row is not None and (row["owner_agent_id"], row["status"]) == ("a1", "in_progress")

    # A new command for the same task (another message id) is refused: one refund per task.
    again = await one(settings, tid, "f1", refund(h, "1.00"))
    assert (again.accepted, again.code) == (False, "invalid_transition")
    assert await count(db, "SELECT count(*) FROM refunds") == 1


async def _rejected(
    settings: Settings, db: Pool, tid: str, actor: str, args: Contract, code: str
) -> CommandReply:
    before = (await ledger_rows(db), await ticket_state(db, tid))
    history = await count(db, "SELECT count(*) FROM ticket_history WHERE ticket_id = $1", tid)
    reply = await one(settings, tid, actor, args)
    assert (reply.accepted, reply.code) == (False, code), reply
    assert (await ledger_rows(db), await ticket_state(db, tid)) == before
    assert await count(db, "SELECT count(*) FROM ticket_history WHERE ticket_id = $1", tid) == (
        history
    )
    return reply


async def test_a_refund_above_what_the_task_asked_for_is_rejected(
    settings: Settings, db: Pool, desk: None
) -> None:
    tid = await new_ticket(settings, db, "task-1")
    asked = HandOffArgs(role="finance", action="refund", data={"amount": "30.00"})
    assert (await one(settings, tid, "a1", asked)).accepted
    h = f"{tid}-H1"
    reply = await _rejected(settings, db, tid, "f1", refund(h, "59.00"), "refund_exceeds_task")
    assert reply.message == "the task asked for 30.00, asked 59.00"
    assert (await one(settings, tid, "f1", refund(h, "30.00"))).accepted


async def test_refund_above_paid_is_rejected_with_the_figures(
    settings: Settings, db: Pool, desk: None
) -> None:
    tid = await new_ticket(settings, db, "over-1")
    h = await hand_off(settings, db, tid, "finance", "refund")
    reply = await _rejected(settings, db, tid, "f1", refund(h, "60.00"), "refund_exceeds_paid")
    assert reply.message == "paid 59.00, refunded 0.00, asked 60.00"


async def test_second_refund_past_paid_is_rejected_and_can_return_to_first_handler(
    settings: Settings, db: Pool, desk: None
) -> None:
    tid = await new_ticket(settings, db, "over-2")
    h1 = await hand_off(settings, db, tid, "finance", "refund")
    h2 = await hand_off(settings, db, tid, "finance", "refund")
    assert (await one(settings, tid, "f1", refund(h1, "40.00"))).accepted

    reply = await _rejected(settings, db, tid, "f1", refund(h2, "30.00"), "refund_exceeds_paid")
    assert reply.message == "paid 59.00, refunded 40.00, asked 30.00"

    taken = await one(settings, tid, "f1", refund(h2, "1.00", refund_id=f"RF-{h1}"))
    assert (taken.code, taken.message) == (
        "refund_id_taken",
        f"refund id RF-{h1} is already registered for {h1}",
    )

    # Returned to the first handler as failed, with the reason; still no ledger row.
    back = await one(settings, tid, "f1", refund(h2, "30.00", return_on_violation=True))
    assert (back.accepted, back.code) == (False, "refund_exceeds_paid")
    assert await count(db, "SELECT count(*) FROM refunds") == 1
    assert await db.fetchval("SELECT refunded FROM order_payments") == Decimal("40.00")
    result = (await ticket_state(db, tid))["handoffs"][1]["result"]
    assert result["outcome"] == "failed"
    assert (
        result["data"]["reason"] == "refund_exceeds_paid: paid 59.00, refunded 40.00, asked 30.00"
    )
    row = await db.fetchrow("SELECT owner_agent_id, status FROM tickets WHERE id = $1", tid)
    assert row is not None and (row["owner_agent_id"], row["status"]) == ("a1", "in_progress")


async def test_the_database_refuses_refunds_past_paid_whatever_the_code_does(
    settings: Settings, db: Pool, desk: None
) -> None:
    import asyncpg

    tid = await new_ticket(settings, db, "db-1")
    await db.execute("INSERT INTO order_payments (order_id, paid) VALUES ('o-db-1', 59.00)")
    insert = """INSERT INTO refunds (refund_id, ticket_id, handoff_id, order_id, amount, reason,
                                     by_agent, at, message_id)
                VALUES ($1, $2, $1, 'o-db-1', $3, 'r', 'f1', now(), 'm')"""
    await db.execute(insert, "R1", tid, Decimal("40.00"))
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(insert, "R2", tid, Decimal("30.00"))
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(insert, "R1", tid, Decimal("1.00"))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("DELETE FROM refunds")


async def test_compensation_above_threshold_needs_a_supervisor_approval(
    settings: Settings, db: Pool, desk: None
) -> None:
    tid = await new_ticket(settings, db, "comp-1")
    h = await hand_off(settings, db, tid, "finance", "payout")
    pay = PayoutArgs(handoff_id=h, amount=Decimal("80.00"))
    reply = await _rejected(settings, db, tid, "f1", pay, "payout_needs_approval")
    assert "above the approval threshold 50.00" in reply.message
    refused = await one(
        settings,
        tid,
        "f1",
        ApprovePayoutArgs(handoff_id=h, amount=Decimal("80.00")),
    )
    assert refused.code == "approval_needs_supervisor"

    approved = await one(
        settings,
        tid,
        "s1",
        ApprovePayoutArgs(handoff_id=h, amount=Decimal("80.00")),
    )
    assert approved.accepted, approved
    answers = await ask(settings, tid, "f1", pay, copies=3)
    assert all(a.accepted for a in answers)
    row = await db.fetchrow("SELECT amount, approval_required, approved_amount FROM payouts")
    assert row is not None and tuple(row) == (Decimal("80.00"), True, Decimal("80.00"))
    assert await count(db, "SELECT count(*) FROM payouts") == 1


@pytest.mark.parametrize(
    ("signed", "amount", "code", "message"),
    [
        (True, "60.00", "invoice_exceeds_order", "order o-inv amount 59.00, asked 60.00"),
        (False, "59.00", "invoice_before_receipt", "order o-inv has no confirmed receipt"),
    ],
)
async def test_invoice_rules(
    settings: Settings, db: Pool, desk: None, signed: bool, amount: str, code: str, message: str
) -> None:
    order = {"signed_at": T0.isoformat()} if signed else {}
    tid = await new_ticket(settings, db, "inv", **order)
    h = await hand_off(settings, db, tid, "finance", "invoice")
    args = InvoiceArgs(
        handoff_id=h, title="某公司", amount=Decimal(amount), quantity=1, einvoice_id="E-1"
    )
    reply = await _rejected(settings, db, tid, "f1", args, code)
    assert reply.message.startswith(message)
    if signed:
        ok = await one(
            settings,
            tid,
            "f1",
            args.model_copy(update={"amount": Decimal("59.00")}),
        )
        assert ok.accepted and ok.data["einvoice_id"] == "E-1"


async def test_a_full_return_ends_with_the_first_handler_and_totals_match(
    settings: Settings, db: Pool, desk: None, channel: AbstractChannel
) -> None:
    await db.execute("INSERT INTO stock (sku, on_hand) VALUES ('CUP-1', 5)")
    tid = await new_ticket(settings, db, "ret-1")
    pick = await hand_off(settings, db, tid, "warehouse", "pick_up_return")
    steps: list[Contract] = [
        PickUpArgs(handoff_id=pick, carrier="SF", tracking_number="SF100"),
        TrackReturnArgs(handoff_id=pick, status="in_transit"),
        TrackReturnArgs(handoff_id=pick, status="delivered"),
    ]
    for step in steps:
        reply = await one(settings, tid, "w1", step)
        assert reply.accepted, reply
    assert (await ticket_state(db, tid))["handoffs"][0]["result"] is None  # steps keep it open

    # Damaged goods go nowhere: rejected, nothing moves.
    bad = await one(
        settings,
        tid,
        "w1",
        ReceiveReturnArgs(
            handoff_id=pick, inspection="damaged", restock=[StockLine(sku="CUP-1", quantity=1)]
        ),
    )
    assert bad.code == "restock_after_failed_inspection"
    received = await one(
        settings,
        tid,
        "w1",
        ReceiveReturnArgs(
            handoff_id=pick,
            inspection="passed",
            notes="完好",
            restock=[StockLine(sku="CUP-1", quantity=1)],
        ),
    )
    assert received.accepted, received
    assert received.owner is not None and "a1" in received.owner  # back with the first handler

    h = await hand_off(settings, db, tid, "finance", "refund")
    refunded = await one(settings, tid, "f1", refund(h, "59.00"))
    assert refunded.accepted, refunded

    state = await ticket_state(db, tid)
    assert [x["result"]["outcome"] for x in state["handoffs"]] == ["done", "done"]
    assert state["handoffs"][0]["result"]["data"]["restocked"] == [{"sku": "CUP-1", "quantity": 1}]
    assert state["owner"]["agent"]["id"] == "a1"
    assert await db.fetchval("SELECT on_hand FROM stock WHERE sku = 'CUP-1'") == 6
    assert await db.fetchval("SELECT sum(delta) FROM stock_movements WHERE sku = 'CUP-1'") == 1
    assert await db.fetchval("SELECT status FROM returns") == "received"
    paid = await db.fetchrow("SELECT paid, refunded FROM order_payments")
    assert paid is not None and tuple(paid) == (Decimal("59.00"), Decimal("59.00"))
    assert await db.fetchval("SELECT sum(amount) FROM refunds") == paid["refunded"]

    returned = await count(
        db,
        """SELECT count(*) FROM ticket_history WHERE ticket_id = $1 AND action = 'result_recorded'
             AND (detail->>'returned_to_first_handler')::boolean""",
        tid,
    )
    assert returned == 2

    async def returned_twice() -> bool:  # the ticket.returned messages were taken by a1's desk
        return await depth(channel, "aftersales") == 0

    await wait_until(returned_twice, what="the results back with the first handler")


async def test_finance_killed_after_commit_before_ack_refunds_once(
    settings: Settings, db: Pool, channel: AbstractChannel, tmp_path: Path
) -> None:
    await add_roster(db)
    running = await start_all(settings, [INTAKE, AFTERSALES])
    workers = WorkerProcesses(tmp_path)
    try:
        tid = await new_ticket(settings, db, "kill-1")
        h = await hand_off(settings, db, tid, "finance", "refund")
        # The task's notice would be the first message the dying worker handles: take it away.
        await wait_until(
            lambda: has_messages(channel, "finance"), what="the task in the finance queue"
        )
        assert len(await take_all(channel, "finance")) == 1
        dying = workers.start("finance", settings, failpoints="after_commit")

        async def killed() -> bool:
            return dying.proc.poll() is not None

        sent = asyncio.create_task(
            ask(settings, tid, "f1", refund(h, "59.00"), message_id="kill-m1")
        )
        await wait_until(killed, what="the finance worker's SIGKILL after commit")
        assert dying.proc.returncode == -9
        assert await count(db, "SELECT count(*) FROM refunds") == 1  # committed, never acked
        workers.start("finance", settings)
        [answer] = await asyncio.wait_for(sent, timeout=30)  # the redelivery answers
        assert answer.accepted and answer.data["refund_id"] == f"RF-{h}"
        assert await count(db, "SELECT count(*) FROM refunds") == 1
        assert await db.fetchval("SELECT refunded FROM order_payments") == Decimal("59.00")
        assert await count(db, "SELECT count(*) FROM inbox WHERE message_id = 'kill-m1'") == 1
    finally:
        await workers.close()
        for r in running:
            await r.stop()


async def ticketq(cli: Cli, *args: str) -> tuple[int, str]:
    """One `ticketq` invocation: (exit code, stdout + stderr)."""
    run = await cli(*args)
    return run.exit_code, run.output


async def test_finance_and_warehouse_staff_work_through_the_cli(
    settings: Settings, db: Pool, desk: None, cli: Cli
) -> None:
    await db.execute("INSERT INTO stock (sku, on_hand) VALUES ('CUP-1', 1)")
    tid = await new_ticket(settings, db, "cli-1")
    h = await hand_off(settings, db, tid, "finance", "refund")
    code, out = await ticketq(cli, "finance", "tasks", "--json", "--as", "f1")
    assert code == 0, out
    assert [(t["ticket_id"], t["handoff_id"]) for t in json.loads(out)] == [(tid, h)]
    code, out = await ticketq(cli, "finance", "tasks", "--as", "f1")
    assert code == 0 and h in out and "refund" in out, out
    assert (await ticketq(cli, "warehouse", "tasks", "--as", "w1"))[
        1
    ].strip() == "(no task waiting)"
    refused = await ticketq(cli, "warehouse", "stock", "--as", "f1")  # finance's staff: not theirs
    assert refused[0] == 1 and "rejected (not_allowed)" in refused[1], refused

    refund_cmd = ("finance", "refund", tid, h, "--reason", "退货", "--as", "f1")
    code, out = await ticketq(cli, *refund_cmd, "--amount", "60.00")
    assert code == 1
    assert "rejected (refund_exceeds_paid): paid 59.00, refunded 0.00, asked 60.00" in out
    code, out = await ticketq(cli, *refund_cmd, "--amount", "59.00", "--json")
    assert code == 0, out
    assert json.loads(out)["data"]["refund_id"] == f"RF-{h}"
    assert json.loads((await ticketq(cli, "finance", "tasks", "--json", "--as", "f1"))[1]) == []
    code, out = await ticketq(cli, "finance", "ledger", "--ticket", tid, "--json", "--as", "f1")
    assert [r["amount"] for r in json.loads(out)["refunds"]] == ["59.00"]
    code, out = await ticketq(cli, "finance", "ledger", "--as", "s1")  # supervisors read all
    assert code == 0 and f"RF-{h}" in out and "59.00" in out, out

    ship = await hand_off(settings, db, tid, "warehouse", "ship")
    ship_cmd = (
        "warehouse",
        "ship",
        tid,
        ship,
        "--carrier",
        "SF",
        "--tracking-number",
        "SF1",
        "--as",
    )
    code, out = await ticketq(cli, *ship_cmd, "w1", "--items", "CUP-1=2")
    assert (code, "stock_would_go_negative" in out) == (1, True), out
    code, out = await ticketq(cli, *ship_cmd, "w1", "--items", "CUP-1=1")
    assert code == 0 and "tracking number SF1" in out, out
    code, out = await ticketq(cli, "warehouse", "stock", "--json", "--as", "w1")
    assert [(s["sku"], s["on_hand"], s["moved"]) for s in json.loads(out)] == [("CUP-1", 0, -1)]
    code, out = await ticketq(cli, "warehouse", "stock", "--as", "w1")
    assert code == 0 and "CUP-1" in out, out
