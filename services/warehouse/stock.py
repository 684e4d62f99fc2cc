"""Stock adjusted by hand: the warehouse's own command beside its operations on tasks."""

from __future__ import annotations

import structlog

from services.warehouse.contracts import AdjustStock, StockAdjusted
from services.warehouse.rules import stock_stays_non_negative
from shared.agents.identity import SessionRefused, acting_agent
from shared.messaging.runtime import Incoming, Outcome, Transaction
from shared.tickets.roles import Role

log = structlog.get_logger(__name__)

ADJUSTERS = frozenset({Role.WAREHOUSE, Role.SUPERVISOR})


async def adjust_stock(tx: Transaction, msg: Incoming[AdjustStock]) -> Outcome:
    asked = msg.payload
    try:
        session = await acting_agent(tx.conn, msg.credential, asked.actor_id, tx.now)
    except SessionRefused as exc:
        return _refuse(tx, exc.code, exc.message)
    agent = session.agent
    if agent is None:
        return _refuse(tx, "unknown_agent", f"no agent {session.agent_id!r} on the roster")
    if not agent.roles & ADJUSTERS:
        log.info("stock_adjustment_refused", agent_id=agent.id, code="not_warehouse")
        return _refuse(tx, "not_warehouse", "only warehouse staff or a supervisor adjust stock")
    on_hand = await tx.conn.fetchval(
        """INSERT INTO stock (sku, on_hand) VALUES ($1, 0)
           ON CONFLICT (sku) DO UPDATE SET sku = excluded.sku RETURNING on_hand""",
        asked.sku,
    )  # the row, created at zero if new, locked until commit
    if violation := stock_stays_non_negative({asked.sku: on_hand}, {asked.sku: asked.delta}):
        return _refuse(tx, violation.code, violation.message)
    now_on_hand = await tx.conn.fetchval(
        "UPDATE stock SET on_hand = on_hand + $2, updated_at = $3 WHERE sku = $1 RETURNING on_hand",
        asked.sku,
        asked.delta,
        tx.now,
    )
    await tx.conn.execute(
        """INSERT INTO stock_movements (sku, delta, reason, note, by_agent, at, message_id)
           VALUES ($1, $2, 'adjust', $3, $4, $5, $6)""",
        asked.sku,
        asked.delta,
        asked.reason,
        agent.id,
        tx.now,
        tx.cause.message_id,
    )
    tx.reply = StockAdjusted(
        accepted=True,
        message=f"{asked.sku}: {asked.delta:+d}, on hand {now_on_hand} ({asked.reason})",
        on_hand=now_on_hand,
    )
    return Outcome("stock_adjusted")


def _refuse(tx: Transaction, code: str, message: str) -> Outcome:
    tx.reply = StockAdjusted(accepted=False, code=code, message=message)
    return Outcome(f"rejected:{code}")
