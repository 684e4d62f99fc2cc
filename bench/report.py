"""The daily report on a day of 100,000 tickets: how long `report daily` takes.

    python -m bench.report [--tickets 100000]

In a database of its own (dropped after): one shop day (2026-11-22, Shanghai) of tickets with
their history (opened, replied, resolved, handoffs and results, losses, reopenings, chases),
first responses, timers with their breaches and escalations, refunds and payouts, all made by
SQL (generate_series). Then times the report (the figures, then its CSVs), as `ticketq report
daily --csv DIR` computes them, without the broker's DLQ counts.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from bench.harness import bench_database
from shared.config import Settings
from shared.db import create_pool
from shared.report.daily import build_report, write_csv

DAY = date(2026, 11, 22)
START = "timestamptz '2026-11-22 00:00+08'"
# Ticket g of the day opens at second (g - 1) * 86400 / n; its history follows within minutes.
OPENED = f"{START} + ((g - 1) * 86400.0 / $1) * interval '1 second'"

DAY_SQL = f"""
INSERT INTO tickets (id, kind, status, channel, priority, source, external_id, customer_id,
                     customer, subject, body, owner_role, first_handler_role, opened_at)
SELECT 'B' || g, (ARRAY['inquiry','unpaid_reminder','complaint','return'])[1 + g % 4], 'open',
       (ARRAY['im','phone','email'])[1 + g % 3], 'normal', 'bench', 'B' || g, 'c', '{{}}', 's',
       'b', CASE WHEN g % 4 < 2 THEN 'presale' ELSE 'aftersales' END,
       CASE WHEN g % 4 < 2 THEN 'presale' ELSE 'aftersales' END, {OPENED}
  FROM generate_series(1, $1) g;

INSERT INTO ticket_history (ticket_id, at, actor_id, actor_name, action, detail, reason,
                            message_id)
SELECT 'B' || g, {OPENED} + m.after * interval '1 minute', 'a' || g % 40, 'agent', m.action,
       m.detail, m.reason, 'm' || g || m.action
  FROM generate_series(1, $1) g
  JOIN (VALUES
        (0, 'opened', '{{}}'::jsonb, NULL, 1),
        (1, 'replied', '{{}}', NULL, 1),
        (5, 'handed_off', '{{"handoff_id": "h", "role": "warehouse"}}', NULL, 5),
        (9, 'result_recorded',
            '{{"handoff_id": "h", "role": "warehouse", "data": {{"delay_reason": "backlog"}}}}',
            NULL, 10),
        (10, 'stepped', '{{"flow": "inquiry v1", "entered": "lost", "resolution": "lost"}}',
            'price_too_high', 20),
        (11, 'chase_taken_over', '{{}}', NULL, 100),
        (12, 'resolved', '{{}}', NULL, 2),
        (13, 'follow_up_attached', '{{"reopened": true}}', NULL, 50)
       ) m (after, action, detail, reason, every) ON g % m.every = 0;

INSERT INTO first_responses (ticket_id, agent_id, assigned_at, due_at, replied_at,
                             business_seconds, met)
SELECT 'B' || g, 'a' || g % 40, {OPENED}, {OPENED}, {OPENED} + interval '1 minute',
       g % 90, g % 90 <= 30
  FROM generate_series(1, $1) g;

INSERT INTO timers (ticket_id, kind, generation, clock, due_at, fire_after, state, armed_at,
                    fired_at)
SELECT 'B' || g, 'no_response_2m', 1, 'business', {OPENED}, {OPENED}, 'fired', {OPENED},
       {OPENED} + interval '2 minutes'
  FROM generate_series(1, $1, 30) g;
INSERT INTO breaches (ticket_id, agent_id, kind, due_at, at, timer_id, generation)
SELECT ticket_id, 'a' || id % 40, kind, due_at, fired_at, id, 1 FROM timers;

INSERT INTO order_payments (order_id, paid)
SELECT 'O' || g, 100 FROM generate_series(1, $1, 100) g;
INSERT INTO refunds (refund_id, ticket_id, handoff_id, order_id, amount, reason, by_agent, at,
                     message_id)
SELECT 'r' || g, 'B' || g, 'r' || g, 'O' || g, 9.90, 'r', 'f', {OPENED} + interval '20 minutes',
       'r' || g
  FROM generate_series(1, $1, 100) g;
"""


async def main(tickets: int) -> None:
    base = Settings()
    async with bench_database(base, f"report_{int(time.time())}") as settings:
        pool = await create_pool(settings, size=1)
        async with pool.acquire() as conn:
            started = time.perf_counter()
            for statement in DAY_SQL.split(";\n"):
                if statement.strip():
                    args = (tickets,) if "$1" in statement else ()
                    await conn.execute(statement, *args)
            await conn.execute("ANALYZE")
            made = await conn.fetchval("SELECT count(*) FROM ticket_history")
            print(
                f"made {tickets} tickets, {made} history rows in "
                f"{time.perf_counter() - started:.1f} s"
            )
            started = time.perf_counter()
            report = await build_report(
                conn, DAY, None, generated_at=datetime.now(UTC), dlq={"error": "not asked"}
            )
            figures = time.perf_counter() - started
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                await write_csv(conn, DAY, None, Path(folder))
                csvs = time.perf_counter() - started
        await pool.close()
    received = report["figures"]["received"]["count"]
    print(
        f"report daily: {figures:.2f} s for the figures ({received} received), "
        f"{csvs:.2f} s for the CSVs"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().tickets))
