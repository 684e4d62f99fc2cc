"""Refunds through finance with 1 and 2 replicas under 10% duplicate deliveries.

    python -m bench.effects [-n 2000] [--replicas 1 2] [--duplicates 0.1]

Each run gets a fresh database and (with TICKETQ_RABBITMQCTL, as `make` sets it) a vhost of its
own. N tickets are prepared with an open finance handoff (refund 59.00 of an order paid 59.00);
N refund commands are published to the finance queue, and a share of them again with the same
message id (half right behind the original, so that two replicas race on it, half at the end,
like a re-publish). Prints refunds/s (N / time until every refund is committed and the queue is
drained) and the duplicate effects found afterwards, which must be 0: refund rows beyond one
per task, handoff results recorded twice, an order refunded beyond what was paid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import uvloop
from aio_pika.abc import AbstractChannel

from bench.harness import CpuSnapshot, bench_environment, broker_channel, workers
from services.finance.contracts import FinanceOperation, RefundArgs
from shared import tickets as domain
from shared.agents.identity import open_session
from shared.config import Settings
from shared.logging import configure_logging
from shared.messaging import topology as messaging
from shared.messaging.envelope import Envelope
from shared.tickets.roles import Role, TicketKind
from shared.tickets.store import ticket_state

BATCH = 500
AFTERSALES = domain.Actor("a1", "李娜", frozenset({Role.AFTERSALES}))


def prepared_ticket(tid: str, now: datetime) -> domain.Ticket:
    """A return ticket taken by a1 and handed to finance for a refund."""
    ticket = domain.new_ticket(tid, TicketKind.RETURN, Role.AFTERSALES, now)
    for command in (
        domain.Claim(actor=AFTERSALES, at=now, message_id=f"{tid}-claim"),
        domain.HandOff(
            actor=AFTERSALES,
            at=now,
            message_id=f"{tid}-handoff",
            handoff_id=f"{tid}-H1",
            role=Role.FINANCE,
            task=domain.Task("refund", {"amount": "59.00"}),
        ),
    ):
        decision = domain.decide(ticket, command)
        assert isinstance(decision, domain.Accepted), decision
        ticket = decision.ticket
    return ticket


async def prepare(database_url: str, n: int, tag: str) -> tuple[list[str], str]:
    """The tickets, each with a refund task, and f1's session token (minted in the store)."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        await conn.executemany(
            "INSERT INTO agents (id, name, roles, shifts, online) VALUES ($1, $2, $3, $4, true)",
            [("a1", "李娜", ["aftersales"], ["day"]), ("f1", "钱财", ["finance"], ["day"])],
        )
        ids = [f"B{tag}-{i}" for i in range(n)]
        rows = []
        for i, tid in enumerate(ids):
            t = prepared_ticket(tid, now)
            order = {"id": f"o-{tid}", "amount": "59.00", "paid_at": now.isoformat(), "items": []}
            rows.append(
                (
                    tid,
                    t.status.value,
                    f"bench-{i}",
                    f"c-{i}",
                    {"id": f"c-{i}", "nick": "n"},
                    order["id"],
                    order,
                    t.owner.role.value,
                    now,
                    ticket_state(t),
                    t.version,
                )
            )
        await conn.executemany(
            """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                                    customer_id, customer, order_id, order_data, subject, body,
                                    owner_role, first_handler_id, first_handler_role, opened_at,
                                    state, version)
               VALUES ($1, 'return', $2, 'wangwang', 'normal', 'bench', $3, $4, $5, $6, $7,
                       '我要退货', '', $8, 'a1', 'aftersales', $9, $10, $11)""",
            rows,
        )
        token, _ = await open_session(conn, "f1", ["finance"], now, timedelta(hours=12))
        return ids, token
    finally:
        await conn.close()


def commands(ids: list[str], share: float, seed: int = 5) -> tuple[list[Envelope], int]:
    """The refund commands in publishing order, with `share` of them published twice."""
    rng = random.Random(seed)
    envelopes = [
        Envelope.wrap(
            FinanceOperation(
                ticket_id=tid,
                actor_id="f1",
                args=RefundArgs(handoff_id=f"{tid}-H1", amount=Decimal("59.00"), reason="退货"),
            ),
            producer="bench",
            correlation_id=tid,
        )
        for tid in ids
    ]
    twice = set(rng.sample(range(len(envelopes)), int(len(envelopes) * share)))
    order: list[Envelope] = []
    late: list[Envelope] = []
    for i, envelope in enumerate(envelopes):
        order.append(envelope)
        if i in twice:
            (order if i % 2 else late).append(envelope)  # racing copy, or a re-publish later
    return order + late, len(twice)


async def count(conn: asyncpg.Connection[asyncpg.Record], sql: str) -> int:
    return int(await conn.fetchval(sql))


async def run(base: Settings, tag: str, n: int, replicas: int, share: float) -> dict[str, float]:
    async with bench_environment(base, tag) as settings, broker_channel(settings) as channel:
        ids, token = await prepare(settings.database_url, n, tag)
        publish, dups = commands(ids, share)
        async with workers("finance", settings, replicas, channel):
            return await measure(settings, channel, publish, dups, n, token)


async def measure(
    settings: Settings,
    channel: AbstractChannel,
    publish: list[Envelope],
    dups: int,
    n: int,
    token: str,
) -> dict[str, float]:
    db = await asyncpg.connect(settings.database_url)
    try:
        exchange = await channel.get_exchange(messaging.EXCHANGE)
        cpu = CpuSnapshot.take()
        started = time.perf_counter()
        for i in range(0, len(publish), BATCH):
            await asyncio.gather(
                *(
                    exchange.publish(
                        messaging.amqp_message(e, headers={messaging.AUTHORIZATION: token}),
                        routing_key="finance",
                    )
                    for e in publish[i : i + BATCH]
                )
            )
        while True:
            refunds = await count(db, "SELECT count(*) FROM refunds")
            ready, _ = await messaging.queue_stats(channel, "finance")
            if refunds >= n and ready == 0:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        cost = cpu.per_message(CpuSnapshot.take(), n)
        await asyncio.sleep(1.0)  # let the last duplicates in flight land, then look again
        duplicates = (
            await count(db, "SELECT count(*) - count(DISTINCT handoff_id) FROM refunds")
            + await count(
                db,
                """SELECT coalesce(sum(n - 1), 0) FROM (
                       SELECT count(*) AS n FROM ticket_history
                        WHERE action = 'result_recorded' GROUP BY ticket_id) x""",
            )
            + await count(db, "SELECT count(*) FROM order_payments WHERE refunded > paid")
            + await count(db, "SELECT count(*) FROM refunds")
            - n
        )
        results = await count(
            db, "SELECT count(*) FROM ticket_history WHERE action = 'result_recorded'"
        )
    finally:
        await db.close()
    return {
        "refunds_per_s": n / elapsed,
        "deliveries_per_s": len(publish) / elapsed,
        "duplicates_sent": dups,
        "results": results,
        "duplicate_effects": duplicates,
        **cost,  # per refund
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2_000, help="refund tasks per run")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duplicates", type=float, default=0.1, help="share published twice")
    args = parser.parse_args()
    base = Settings()
    configure_logging("warning")
    print(
        f"effects benchmark: {args.n} refunds, {args.duplicates:.0%} delivered twice, "
        f"{os.cpu_count()} cores"
    )
    print(
        f"{'replicas':>8} {'refunds/s':>10} {'deliveries/s':>13} {'cpu ms':>7} {'dups sent':>10} "
        f"{'results':>8} {'duplicate effects':>18}"
    )
    failed = False
    for replicas in args.replicas:
        tag = f"e{replicas}_{int(time.time())}"
        r = uvloop.run(run(base, tag, args.n, replicas, args.duplicates))
        print(
            f"{replicas:>8} {r['refunds_per_s']:>10.0f} {r['deliveries_per_s']:>13.0f} "
            f"{r['cpu_ms']:>7.2f} {r['duplicates_sent']:>10.0f} {r['results']:>8.0f} "
            f"{r['duplicate_effects']:>18.0f}"
        )
        failed = failed or r["duplicate_effects"] != 0 or r["results"] != args.n
    if failed:
        raise SystemExit("duplicate effects or missing results: see above")


if __name__ == "__main__":
    main()
