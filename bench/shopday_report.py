"""What a simulated shop day measured, and its proofs (see `bench/shopday.py`).

Hops are read from the tickets' history (shop-clock timestamps) and the simulation's scheduled
send times. A hop the system alone makes (publish -> opened, operation -> result recorded) is
shown in real milliseconds too: shop seconds divided by the clock's speed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aio_pika.abc import AbstractChannel

from bench.shopday_plan import SHOP_TZ, DayPlan, on_shift
from services.catalogue import CATALOGUE
from services.intake.client import contact_message_id
from shared.clock import StartedClock
from shared.db import Pool
from shared.messaging.topology import dead_letter_queue, queue_stats

if TYPE_CHECKING:
    from bench.shopday import Console

# Each ledger whose row is an effect of one task: at most one row per handoff (SPEC §10).
EFFECT_LEDGERS = ("refunds", "payouts", "invoices", "shipments", "returns", "interceptions")
QUEUED = "tickets waiting for an agent"  # sampled beside the broker's queues


@dataclass(frozen=True)
class Proof:
    name: str
    holds: bool
    detail: str
    count: int = 0  # of what it checked (tickets, effects, timers fired)


@dataclass
class DayResult:
    load: float
    shrink: float
    speed: float
    contacts: int
    tickets: int
    wall_seconds: float
    sim_cpu: float
    hops: dict[str, list[float]]  # shop seconds
    round_trips: dict[str, list[float]]  # command -> real seconds
    breaches: dict[str, int]
    escalations: dict[str, int]
    first_response_met: tuple[int, int]  # met, answered
    depth: list[tuple[datetime, dict[str, int]]]
    proofs: list[Proof]
    worker_cpu: float | None = None
    caught_up: float | None = None  # real s after the last case until no backlog was left
    sign_ins: int = 0  # of the simulated people (one per person and shift)
    gave_up: list[str] = field(default_factory=list)  # cases the people stopped waiting on

    @property
    def proven(self) -> bool:
        return all(p.holds for p in self.proofs)


async def measure(
    pool: Pool,
    channel: AbstractChannel,
    plan: DayPlan,
    clock: StartedClock,
    console: Console,
    depth: list[tuple[datetime, dict[str, int]]],
    refused: list[str],
    operations: Mapping[str, datetime],
    published: Mapping[str, datetime],
    wall: float,
    sim_cpu: float,
) -> DayResult:
    async with pool.acquire() as conn:
        tickets = int(await conn.fetchval("SELECT count(*) FROM tickets"))
        hops = await _hops(conn, plan, operations)
        lag = [(published[c.key] - c.at).total_seconds() for c in plan.sent if c.key in published]
        hops = {"scheduled -> published (the generator's lag)": lag, **hops}
        breaches = await _per_kind(conn, "breaches")
        escalations = await _per_kind(conn, "escalations")
        met = await _first_responses(conn)
        proofs = [
            await _one_ticket_or_follow_up(conn, plan),
            await _no_effect_twice(conn),
            await _timers_fired_once(conn, clock.now() - timedelta(seconds=clock.speed)),
            await _dlq_empty(channel),
            Proof(
                "every command its flow allows was accepted",
                not refused,
                "; ".join(refused[:5]) or "all",
                len(refused),
            ),
        ]
    return DayResult(
        load=plan.load,
        shrink=plan.shrink,
        speed=clock.speed,
        contacts=len(plan.sent),
        tickets=tickets,
        wall_seconds=wall,
        sim_cpu=sim_cpu,
        hops=hops,
        round_trips=dict(console.round_trips),
        breaches=breaches,
        escalations=escalations,
        first_response_met=met,
        depth=depth,
        proofs=proofs,
    )


async def _per_kind(conn: Any, table: str) -> dict[str, int]:
    rows = await conn.fetch(f"SELECT kind, count(*) FROM {table} GROUP BY kind")
    return {str(r["kind"]): int(r["count"]) for r in rows}


async def _first_responses(conn: Any) -> tuple[int, int]:
    """(met within 30 s, answered)."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE met AND replied_at IS NOT NULL) AS met,"
        " count(replied_at) AS answered FROM first_responses"
    )
    return int(row["met"]), int(row["answered"])


async def _hops(
    conn: Any, plan: DayPlan, operations: Mapping[str, datetime]
) -> dict[str, list[float]]:
    sent = {c.key: c.at for c in plan.sent}
    hops: dict[str, list[float]] = {}
    opened = await conn.fetch(
        """SELECT t.external_id,
                  (SELECT min(at) FROM ticket_history h
                    WHERE h.ticket_id = t.id AND action = 'opened') AS opened_at,
                  (SELECT min(at) FROM ticket_history h
                    WHERE h.ticket_id = t.id AND action = 'assigned') AS assigned,
                  f.assigned_at AS taken, f.replied_at
           FROM tickets t LEFT JOIN first_responses f ON f.ticket_id = t.id"""
    )
    hops["publish -> ticket opened"] = [
        (r["opened_at"] - sent[r["external_id"]]).total_seconds() for r in opened
    ]
    hops["opened -> assigned (on shift)"] = [
        (r["assigned"] - r["opened_at"]).total_seconds()
        for r in opened
        if r["assigned"] is not None and _staffed(r["opened_at"])
    ]
    hops["assigned -> first reply"] = [
        (r["replied_at"] - r["taken"]).total_seconds() for r in opened if r["replied_at"]
    ]
    follow_ups = {contact_message_id(c.submit): c.at for c in plan.sent}
    attached = await conn.fetch(
        "SELECT message_id, at FROM ticket_history WHERE action = 'follow_up_attached'"
    )
    hops["follow-up -> attached"] = [
        (r["at"] - follow_ups[r["message_id"]]).total_seconds()
        for r in attached
        if r["message_id"] in follow_ups
    ]
    handoffs = await conn.fetch(
        """SELECT h->>'id' AS id, (h->>'opened_at')::timestamptz AS opened,
                  (h->'result'->>'at')::timestamptz AS done,
                  (SELECT min(x.at) FROM ticket_history x
                    WHERE x.ticket_id = t.id AND x.action IN ('stepped', 'closed', 'replied')
                      AND x.at > (h->'result'->>'at')::timestamptz) AS next_move
           FROM tickets t, jsonb_array_elements(t.state->'handoffs') h"""
    )
    done = [r for r in handoffs if r["done"] is not None]
    hops["handoff -> task done"] = [(r["done"] - r["opened"]).total_seconds() for r in done]
    hops["operation -> result"] = [
        (r["done"] - operations[r["id"]]).total_seconds() for r in done if r["id"] in operations
    ]
    hops["result -> first handler's next move"] = [
        (r["next_move"] - r["done"]).total_seconds() for r in done if r["next_move"]
    ]
    return hops


def _staffed(at: datetime) -> bool:
    return on_shift(("midnight", "early", "late"), at)


# --- The proofs --------------------------------------------------------------------------------


async def _one_ticket_or_follow_up(conn: Any, plan: DayPlan) -> Proof:
    """Every contact sent (re-publishes included) is exactly one contact row, and a customer's
    contacts about one order are one ticket: one of them opened it (the first intake took: a
    follow-up may overtake its opening contact in a backlog), the others follow it up."""
    rows = {
        (r["source"], r["external_id"]): r
        for r in await conn.fetch(
            """SELECT c.source, c.external_id, c.is_follow_up, c.ticket_id,
                      t.source AS t_source, t.external_id AS t_external_id
               FROM ticket_contacts c JOIN tickets t ON t.id = c.ticket_id"""
        )
    }
    wrong: list[str] = []
    overtaken = 0
    for contact in plan.contacts:
        group = [contact, *contact.follow_ups]
        found = [rows.pop((c.submit.source, c.key), None) for c in group]
        missing = [c.key for c, row in zip(group, found, strict=True) if row is None]
        if missing:
            wrong.append(f"no ticket for {', '.join(missing)}")
            continue
        ticket_ids = {row["ticket_id"] for row in found if row is not None}
        openers = [row for row in found if row is not None and not row["is_follow_up"]]
        if len(ticket_ids) != 1 or len(openers) != 1:
            wrong.append(f"{contact.key}: {len(ticket_ids)} tickets, {len(openers)} openers")
        elif openers[0]["t_external_id"] != openers[0]["external_id"]:
            wrong.append(f"{contact.key}: its ticket was opened by another contact")
        overtaken += openers[0]["external_id"] != contact.key if openers else 0
    wrong += [f"unplanned contact {key}" for key in rows]
    tickets = int(await conn.fetchval("SELECT count(*) FROM tickets"))
    if tickets != len(plan.contacts):
        wrong.append(f"{tickets} tickets for {len(plan.contacts)} customers' problems")
    follow_ups = sum(len(c.follow_ups) for c in plan.contacts)
    return Proof(
        "every contact became exactly one ticket or follow-up",
        not wrong,
        "; ".join(wrong[:5])
        or f"{len(plan.contacts)} tickets, {follow_ups} follow-ups ({overtaken} overtook their "
        f"opening contact), {sum(1 for c in plan.sent if c.republish)} re-published contacts "
        "dropped",
        tickets,
    )


async def _no_effect_twice(conn: Any) -> Proof:
    """One ledger row per task at most, and every task done by an operation has its row."""
    wrong = []
    effects = 0
    for ledger in EFFECT_LEDGERS:
        rows, tasks = await conn.fetchrow(
            f"SELECT count(*), count(DISTINCT handoff_id) FROM {ledger}"
        )
        effects += rows
        if rows != tasks:
            wrong.append(f"{ledger}: {rows} rows for {tasks} tasks")
    # Each finance and warehouse task the flows finished with an operation left one effect.
    missing = await conn.fetch(
        """SELECT h->>'id' AS id, h->'task'->>'action' AS action
           FROM tickets t, jsonb_array_elements(t.state->'handoffs') h
           WHERE h->'result'->>'outcome' = 'done'
             AND h->'task'->>'action' IN ('refund', 'payout', 'invoice')
             AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.handoff_id = h->>'id')
             AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.handoff_id = h->>'id')
             AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.handoff_id = h->>'id')"""
    )
    wrong += [f"task {r['id']} ({r['action']}) done without its ledger row" for r in missing]
    return Proof(
        "no effect twice",
        not wrong,
        "; ".join(wrong[:5])
        or f"{effects} effects (refunds, payouts, invoices, shipments, returns), one per task",
        effects,
    )


async def _timers_fired_once(conn: Any, due_by: datetime) -> Proof:
    """No timer due (a second of real time ago) is still pending; each fired timer wrote its
    breach, escalation and history at most once (their rows name the timer)."""
    late = await conn.fetchval(
        "SELECT count(*) FROM timers WHERE state = 'pending' AND fire_after <= $1", due_by
    )
    fired = await conn.fetchval("SELECT count(*) FROM timers WHERE state = 'fired'")
    twice = await conn.fetchval(
        """SELECT count(*) FROM (
               SELECT message_id FROM ticket_history WHERE message_id LIKE 'timer:%'
               GROUP BY message_id, action HAVING count(*) > 1
               UNION ALL SELECT timer_id::text FROM breaches GROUP BY timer_id HAVING count(*) > 1
               UNION ALL SELECT timer_id::text FROM escalations GROUP BY timer_id
                   HAVING count(*) > 1) twice"""
    )
    early = await conn.fetchval(
        "SELECT count(*) FROM timers WHERE state = 'fired' AND fired_at < due_at"
    )
    return Proof(
        "every due timer fired once",
        late == 0 and twice == 0 and early == 0,
        f"{fired} fired, {late} due and not fired, {twice} fired twice, {early} early",
        fired,
    )


async def _dlq_empty(channel: AbstractChannel) -> Proof:
    dead = {
        q: n
        for q in CATALOGUE.queue_names
        if (n := (await queue_stats(channel, dead_letter_queue(q)))[0])
    }
    return Proof("DLQ empty", not dead, str(dead) if dead else "every <queue>.dlq empty")


# --- Printing ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _shop(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def hop_lines(result: DayResult) -> list[str]:
    lines = [f"{'hop':<38} {'n':>5} {'p50 (shop)':>11} {'p99 (shop)':>11}  real ms p50/p99"]
    for hop, values in result.hops.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        real = f"{p50 / result.speed * 1000:.0f} / {p99 / result.speed * 1000:.0f}"
        lines.append(f"{hop:<38} {len(values):>5} {_shop(p50):>11} {_shop(p99):>11}  {real}")
    for name, values in sorted(result.round_trips.items()):
        ms = [v * 1000 for v in values]
        lines.append(
            f"{'command ' + name + ' (round trip)':<38} {len(values):>5} {'':>11} {'':>11}  "
            f"{percentile(ms, 0.5):.0f} / {percentile(ms, 0.99):.0f}"
        )
    return lines


def print_result(result: DayResult, *, chart: Path | None = None) -> None:
    print(
        f"\n== Double-11 at {result.load:g}x the normal peak (contacts / {result.shrink:g}): "
        f"{result.contacts} contacts, {result.tickets} tickets; 24 h in "
        f"{24 * 3600 / result.speed:.0f} s (clock x{result.speed:.0f}), "
        f"ran {result.wall_seconds:.0f} s"
    )
    for line in hop_lines(result):
        print(line)
    met, answered = result.first_response_met
    print(f"first response within 30 s: {met}/{answered}")
    print(f"breaches: {result.breaches or 'none'}; escalations: {result.escalations or 'none'}")
    peak = {
        q: max((d.get(q, 0) for _, d in result.depth), default=0) for q in CATALOGUE.queue_names
    }
    print(f"queue depth max: {peak}")
    behind = "never" if result.caught_up is None else f"after {result.caught_up:.1f} s"
    print(f"cases given up (the system too far behind to wait for): {len(result.gave_up)}")
    for case in result.gave_up[:3]:
        print(f"  {case}")
    print(f"sign-ins: {result.sign_ins} (each person at their first command of a shift)")
    print(f"caught up with the day (no message, outbox row or due timer left): {behind}")
    cpu = f"{result.worker_cpu:.1f} s" if result.worker_cpu is not None else "in-process"
    print(f"CPU: workers {cpu}, simulation {result.sim_cpu:.1f} s")
    for proof in result.proofs:
        print(f"[{'ok' if proof.holds else 'FAILED'}] {proof.name}: {proof.detail}")
    if chart is not None and result.depth:
        write_chart(result, chart)
        print(f"queue depth chart: {chart}")


def write_chart(result: DayResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [at.astimezone(SHOP_TZ).replace(tzinfo=None) for at, _ in result.depth]
    figure, axes = plt.subplots(figsize=(10, 4))
    for queue in [*CATALOGUE.queue_names, QUEUED]:
        series = [d.get(queue, 0) for _, d in result.depth]
        if any(series):
            axes.plot(times, series, label=queue, linewidth=1)  # type: ignore[arg-type]
    axes.set_title(
        f"Double-11 queue depth, {result.load:g}x normal peak ({result.contacts} contacts)"
    )
    axes.set_xlabel("shop time (Asia/Shanghai)")
    axes.set_ylabel("messages ready / tickets waiting")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper right")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
