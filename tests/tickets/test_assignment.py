"""Auto-assignment with two after-sales replicas assigning at once (SPEC §5.2)."""

from __future__ import annotations

from pathlib import Path

from services.intake.client import TicketPublisher
from services.intake.worker import SERVICE as INTAKE
from shared.config import Settings
from shared.db import Pool
from tests.helpers import WorkerProcess, add_agents, contact, running, wait_until

AGENTS = [(f"a{i}", f"客服{i}", ["aftersales"], ["day", "night"]) for i in range(1, 5)]
TICKETS = 120


async def test_two_replicas_assign_each_ticket_once_and_balance_the_load(
    settings: Settings, db: Pool, broker: object, tmp_path: Path
) -> None:
    await add_agents(db, AGENTS)
    staffed = {"TICKETQ_CLOCK_START": "2026-11-23T10:00:00+08:00"}
    replicas = [
        WorkerProcess("aftersales", settings, log_path=tmp_path / f"as-{i}.log", env=staffed)
        for i in range(2)
    ]
    try:
        async with running(INTAKE, settings), TicketPublisher(settings.amqp_url, producer="t") as p:
            await p.publish_many(
                contact(f"ww-{i}", subject="退货", order_id=f"o-{i}") for i in range(TICKETS)
            )
            await wait_until(lambda: _all_assigned(db), timeout=60, what="every ticket assigned")
    finally:
        for r in replicas:
            await r.stop()
    loads = {
        r["owner_agent_id"]: r["n"]
        for r in await db.fetch(
            "SELECT owner_agent_id, count(*) AS n FROM tickets GROUP BY owner_agent_id"
        )
    }
    assert loads == {f"a{i}": TICKETS // 4 for i in range(1, 5)}  # fewest-open: exactly even
    assigned = await db.fetchval("SELECT count(*) FROM ticket_history WHERE action = 'assigned'")
    assert assigned == TICKETS  # each ticket assigned once
    for r in replicas:
        assert '"level": "error"' not in r.log()


async def _all_assigned(db: Pool) -> bool:
    n = await db.fetchval("SELECT count(*) FROM tickets WHERE owner_agent_id IS NOT NULL")
    return bool(n == TICKETS)
