"""Auto-assignment cost with 1k and with 50k open tickets already in the database (SPEC §5.2).

    python -m bench.assignment [-n 1000] [--open 1000 50000] [--replicas 2]

Each run gets a fresh database (no broker: the assigner is called as the after-sales desk
calls it for a routed ticket, one transaction per ticket). The open tickets are bulk-loaded
with SQL, owned by the role's agents, beside half as many resolved or closed ones (history,
not load); then N queued tickets are assigned by `--replicas` concurrent assigners, each on a
connection of its own, as replicas would. Prints the per-assignment latency p50/p99 (one
transaction: role lock, ticket, roster, loads, save) and tickets/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import datetime

import asyncpg

from bench.harness import bench_database
from shared import tickets as domain
from shared.config import Settings
from shared.db import Connection, Pool, create_pool
from shared.logging import configure_logging
from shared.tickets.desk import auto_assign
from shared.tickets.roles import Role, TicketKind
from shared.tickets.store import ticket_state

AGENTS = 20
STAFFED = datetime.fromisoformat("2026-11-23T10:00:00+08:00")  # day shift, shop time


def _owned_state() -> str:
    """A realistic state document for the bulk-loaded tickets (its id is set per row)."""
    ticket = domain.new_ticket("T", TicketKind.RETURN, Role.AFTERSALES, STAFFED)
    taken = domain.decide(
        ticket,
        domain.Assign(
            actor=domain.SYSTEM, at=STAFFED, message_id="m", agent=domain.AgentRef("a00", "客服")
        ),
    )
    assert isinstance(taken, domain.Accepted), taken
    return json.dumps(ticket_state(taken.ticket))


async def prepare(conn: Connection, open_tickets: int, queued: int) -> list[str]:
    """The roster, `open_tickets` owned and open, half as many finished, `queued` to assign."""
    await conn.executemany(
        "INSERT INTO agents (id, name, roles, shifts, online) VALUES ($1, $2, $3, $4, true)",
        [(f"a{i:02}", f"客服{i}", ["aftersales"], ["day", "night"]) for i in range(AGENTS)],
    )
    # One statement per kind of row; owners spread evenly, statuses as a desk has them.
    await conn.execute(
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                                customer_id, customer, subject, body, owner_role, owner_agent_id,
                                first_handler_id, first_handler_role, opened_at, state, version)
           SELECT 'L' || i, 'return', s.status, 'wangwang', 'normal', 'bench', 'L' || i,
                  'c-' || i, jsonb_build_object('id', 'c-' || i, 'nick', 'nick' || i),
                  '我要退货', repeat('收到的杯子破损了,我要退货。', 8), 'aftersales', a.id,
                  a.id, 'aftersales', $4::timestamptz - i * interval '1 second',
                  jsonb_set($3::text::jsonb, '{id}', to_jsonb('L' || i)), 2
             FROM generate_series(1, $1::int + $2::int) AS i,
                  LATERAL (SELECT 'a' || lpad((i % $5::int)::text, 2, '0') AS id) a,
                  LATERAL (SELECT CASE WHEN i > $1 THEN (ARRAY['resolved', 'closed'])[i % 2 + 1]
                                       ELSE 'in_progress' END AS status) s""",
        open_tickets,
        open_tickets // 2,
        _owned_state(),
        STAFFED,
        AGENTS,
    )
    ids = [f"Q{i}" for i in range(queued)]
    await conn.executemany(  # as intake leaves a new ticket: queued for its role, no state yet
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                                customer_id, customer, subject, body, owner_role, opened_at)
           VALUES ($1, 'return', 'queued', 'wangwang', 'normal', 'bench', $1, 'c', '{}',
                   '我要退货', '', 'aftersales', $2)""",
        [(tid, STAFFED) for tid in ids],
    )
    await conn.execute("VACUUM ANALYZE")  # as autovacuum would have by now
    return ids


async def assign_all(pool: Pool, ids: list[str], replicas: int) -> list[float]:
    """Assign every ticket with `replicas` concurrent assigners; each assignment's seconds."""
    todo = iter(ids)
    took: list[float] = []

    async def assigner() -> None:
        async with pool.acquire() as conn:
            for tid in todo:
                started = time.perf_counter()
                async with conn.transaction():
                    agent = await auto_assign(conn, tid, Role.AFTERSALES, STAFFED, f"bench:{tid}")
                took.append(time.perf_counter() - started)
                assert agent is not None, tid

    await asyncio.gather(*(assigner() for _ in range(replicas)))
    return took


async def run(
    base: Settings, tag: str, open_tickets: int, n: int, replicas: int
) -> dict[str, float]:
    async with bench_database(base, tag) as settings:
        conn = await asyncpg.connect(settings.database_url)
        try:
            ids = await prepare(conn, open_tickets, n)
        finally:
            await conn.close()
        pool = await create_pool(settings, size=replicas)
        try:
            started = time.perf_counter()
            took = await assign_all(pool, ids, replicas)
            elapsed = time.perf_counter() - started
        finally:
            await pool.close()
    quantiles = statistics.quantiles(took, n=100)
    return {
        "tickets_per_s": n / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000, help="tickets to assign per run")
    parser.add_argument("--open", type=int, nargs="+", default=[1_000, 50_000])
    parser.add_argument("--replicas", type=int, default=2, help="concurrent assigners")
    args = parser.parse_args()
    base = Settings()
    configure_logging("warning")
    print(
        f"assignment benchmark: {args.n} tickets, {AGENTS} agents, "
        f"{args.replicas} assigners, {os.cpu_count()} cores"
    )
    print(f"{'open':>8} {'tickets/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
    for open_tickets in args.open:
        tag = f"assign{open_tickets}_{int(time.time())}"
        r = asyncio.run(run(base, tag, open_tickets, args.n, args.replicas))
        print(
            f"{open_tickets:>8} {r['tickets_per_s']:>10.0f} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f}"
        )


if __name__ == "__main__":
    main()
