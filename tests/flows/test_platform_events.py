"""The platform's intervention (小二介入) as upstream events on the real broker and database:
the ruling answers the flow's wait, the evidence deadline escalates a ticket short of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.aftersales.contracts import (
    InFavourOf,
    PlatformInterventionOpened,
    PlatformRuling,
)
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.tickets.contracts import ResolveArgs
from shared.tickets.roles import TicketKind
from tests.flows.walking import flow, history, opened, send, walk
from tests.helpers import T0, publish_events, wait_until


def intervention(order_id: str, evidence_hours: float) -> PlatformInterventionOpened:
    return PlatformInterventionOpened(
        intervention_id=f"pi-{order_id}",
        order_id=order_id,
        source="tmall-platform",
        opened_at=T0,
        evidence_due_at=T0 + timedelta(hours=evidence_hours),
        reason="顾客称收到的商品与描述不符",
    )


def ruling(order_id: str, for_whom: InFavourOf) -> PlatformRuling:
    return PlatformRuling(
        intervention_id=f"pi-{order_id}",
        order_id=order_id,
        source="tmall-platform",
        ruled_at=T0 + timedelta(hours=1),
        in_favour_of=for_whom,
        note="支持买家退款",
    )


async def rows(db: Pool, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(sql, *args)]


async def test_the_platforms_ruling_answers_the_flows_wait_once(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.WRONG_ITEM, "pf-1", subject="发错货")
    await walk(settings, tid, "a1", "photos_received", "not_shop_error", "not_accepted")
    await walk(settings, tid, "a1", "excessive")
    half_way = await send(settings, tid, "a1", ResolveArgs(summary="已解决"))
    assert (half_way.accepted, half_way.code) == (False, "not_allowed_by_flow")

    await publish_events(settings, intervention("o-pf-1", evidence_hours=48))

    async def told() -> bool:
        return bool(await history(db, tid, "platform_intervention_opened"))

    await wait_until(told, what="the intervention in the ticket's history")
    [deadline] = await rows(
        db, "SELECT due_at, state FROM timers WHERE ticket_id = $1 AND kind = 'evidence_due'", tid
    )
    assert deadline == {"due_at": T0 + timedelta(hours=48), "state": "pending"}

    decided = ruling("o-pf-1", InFavourOf.CUSTOMER)
    await publish_events(settings, decided)
    await publish_events(settings, decided)  # re-published with a new message id: known already

    async def refunding() -> bool:
        return bool((await flow(db, tid))["state"] == "refund")

    await wait_until(refunding, what="the ruling to move the flow")
    moves = [h for h in await history(db, tid) if h["actor_id"] == "system"]
    assert [m["detail"]["answer"] for m in moves] == ["ruled_for_customer"]
    cancelled = await db.fetchval(
        "SELECT state FROM timers WHERE ticket_id = $1 AND kind = 'evidence_due'", tid
    )
    assert cancelled == "cancelled"
    handoffs = await db.fetchval(
        "SELECT count(*) FROM ticket_history WHERE ticket_id = $1 AND action = 'handed_off'", tid
    )
    assert handoffs == 0  # the refund's task is in the step itself (its `handoff_id`)
    assert (await flow(db, tid))["handoff_id"] is not None


async def test_the_evidence_deadline_escalates_a_ticket_not_yet_waiting_for_the_ruling(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await opened(settings, db, TicketKind.WRONG_ITEM, "pf-2", subject="发错货")
    await walk(settings, tid, "a1", "photos_received")  # at `verify`: no evidence submitted
    await publish_events(settings, intervention("o-pf-2", evidence_hours=2))

    async def armed() -> bool:
        return bool(await history(db, tid, "platform_intervention_opened"))

    await wait_until(armed, what="the evidence deadline")
    clock.advance(timedelta(hours=2))

    async def escalated() -> bool:
        return bool(await history(db, tid, "escalated"))

    await wait_until(escalated, what="the escalation at the deadline")
    [row] = await rows(db, "SELECT reason FROM escalations WHERE ticket_id = $1", tid)
    assert "evidence deadline" in row["reason"]

    # A ruling for a ticket not at the wait is told, not applied: its agent answers it there.
    await publish_events(settings, ruling("o-pf-2", InFavourOf.SHOP))

    async def ruled() -> bool:
        return bool(await history(db, tid, "platform_ruled"))

    await wait_until(ruled, what="the ruling in the history")
    assert (await flow(db, tid))["state"] == "verify"


async def test_an_intervention_on_an_order_without_a_ticket_is_kept_not_dead_lettered(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    await publish_events(settings, ruling("o-none", InFavourOf.SHOP))  # the ruling first
    await publish_events(settings, intervention("o-none", evidence_hours=24))

    async def kept() -> bool:
        row = await db.fetchrow(
            "SELECT opened_at, in_favour_of FROM platform_interventions WHERE order_id = 'o-none'"
        )
        return row is not None and row["opened_at"] is not None

    await wait_until(kept, what="both facts kept")
    timers = await db.fetchval("SELECT count(*) FROM timers WHERE kind = 'evidence_due'")
    assert timers == 0
