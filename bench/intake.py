"""Intake throughput and publish-to-routed latency, with 1 and 2 intake replicas.

    python -m bench.intake [-n 10000] [--replicas 1 2] [--rate R] [--count-only]

`--count-only` measures throughput as `pipeline_limit.py` does (bench/ratio.py uses it): the
routed messages stay in their queues, counted by depth, instead of being consumed here to time
each one (consuming them costs the broker and this process CPU the limit's pipeline never
spends, on the same two cores).

Uses a database and (when TICKETQ_RABBITMQCTL is set, as `make` sets it) a vhost of its own,
both made afresh for each run. Prints tickets/s and latency p50/p95/p99 per replica count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime

import aio_pika
import uvloop
from aio_pika.abc import AbstractChannel

from bench.harness import CpuSnapshot, bench_environment, broker_channel, workers
from services.intake.client import TicketPublisher, contact_message_id
from services.intake.contracts import SubmitTicket
from shared.config import Settings
from shared.logging import configure_logging
from shared.messaging import topology as messaging
from shared.tickets.contracts import Channel, Customer, Order

BATCH = 500
DESKS = ("presale", "aftersales")  # where intake routes every new ticket


def tickets(n: int, tag: str) -> list[SubmitTicket]:
    now = datetime.now(UTC)
    kinds = ["这款有货吗?", "快递还没到,物流不更新", "收到的杯子破损了", "我要退货"]
    return [
        SubmitTicket(
            source="bench",
            external_id=f"{tag}-{i}",
            channel=Channel.WANGWANG,
            customer=Customer(id=f"c-{i}", nick=f"nick{i}"),
            order=None
            if i % 4 == 0
            else Order(
                id=f"{tag}-o-{i}", amount="59.00", paid_at=now, shipped_at=now if i % 2 else None
            ),
            subject=kinds[i % 4],
            occurred_at=now,
        )
        for i in range(n)
    ]


async def run(
    base: Settings,
    tag: str,
    n: int,
    replicas: int,
    rate: float | None,
    *,
    count_only: bool = False,
) -> dict[str, float]:
    async with (
        bench_environment(base, tag) as settings,
        broker_channel(settings) as channel,
        workers("intake", settings, replicas, channel),
    ):
        if count_only:
            return await count_routed(settings, channel, tag, n)
        return await measure(settings, channel, tag, n, rate)


async def publish_tickets(settings: Settings, batch: list[SubmitTicket]) -> None:
    async with TicketPublisher(settings.amqp_url, producer="bench") as publisher:
        for i in range(0, len(batch), BATCH):
            await publisher.publish_many(batch[i : i + BATCH])


async def count_routed(
    settings: Settings, channel: AbstractChannel, tag: str, n: int
) -> dict[str, float]:
    """Tickets/s from the first publish until `n` routed messages wait in the desks' queues,
    and the CPU milliseconds per ticket meanwhile: the machine's and each process group's
    (`CpuSnapshot.per_message`)."""
    batch = tickets(n, tag)
    cpu = CpuSnapshot.take()
    started = time.perf_counter()
    publishing = asyncio.create_task(publish_tickets(settings, batch))
    while True:
        routed = sum([(await messaging.queue_stats(channel, q))[0] for q in DESKS])
        if routed >= n:
            break
        await asyncio.sleep(0.02)  # polling the depth: consuming would cost what we measure
    elapsed = time.perf_counter() - started
    cost = cpu.per_message(CpuSnapshot.take(), n)
    await publishing
    return {"tickets_per_s": n / elapsed, **cost}


async def measure(
    settings: Settings, channel: AbstractChannel, tag: str, n: int, rate: float | None
) -> dict[str, float]:
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    last_routed = 0.0

    async def on_routed(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal last_routed
        cause = json.loads(message.body)["causation_id"]
        last_routed = time.perf_counter()
        latencies.append(last_routed - sent_at[cause])
        await message.ack()
        if len(latencies) >= n:
            done.set()

    await channel.set_qos(prefetch_count=1000)
    for queue in DESKS:
        await (await channel.get_queue(queue)).consume(on_routed)
    batch = tickets(n, tag)
    started = time.perf_counter()
    async with TicketPublisher(settings.amqp_url, producer="bench") as publisher:
        # A burst (the whole load at once: latency is mostly time queued), or a steady
        # `rate` in small batches (latency of the pipeline itself, below capacity).
        step = BATCH if rate is None else max(1, int(rate // 20))
        for i in range(0, n, step):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            chunk = batch[i : i + step]
            now = time.perf_counter()  # before: a result may be back before the confirm
            for ticket in chunk:
                sent_at[contact_message_id(ticket)] = now
            await publisher.publish_many(chunk)
    await asyncio.wait_for(done.wait(), timeout=600)
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "tickets_per_s": n / (last_routed - started),
        "p50_ms": quantiles[49] * 1000,
        "p95_ms": quantiles[94] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="tickets per run")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--rate", type=float, help="publish at this many tickets/s instead of all at once"
    )
    parser.add_argument(
        "--count-only", action="store_true", help="throughput only, as pipeline_limit.py counts"
    )
    args = parser.parse_args()
    if args.count_only and args.rate is not None:
        parser.error("--count-only publishes all at once; it takes no --rate")
    base = Settings()
    configure_logging("warning")
    load = "all at once" if args.rate is None else f"at {args.rate:.0f}/s"
    print(f"intake benchmark: {args.n} tickets published {load}, {os.cpu_count()} cores")
    keys = ("cpu_ms",) if args.count_only else ("p50_ms", "p95_ms", "p99_ms")
    print(
        f"{'replicas':>8} {'tickets/s':>10} " + " ".join(f"{k.replace('_', ' '):>9}" for k in keys)
    )
    for replicas in args.replicas:
        tag = f"r{replicas}_{int(time.time())}"
        r = uvloop.run(run(base, tag, args.n, replicas, args.rate, count_only=args.count_only))
        print(
            f"{replicas:>8} {r['tickets_per_s']:>10.0f} " + " ".join(f"{r[k]:>9.2f}" for k in keys)
        )


if __name__ == "__main__":
    main()
