"""An outage is not bad input: while PostgreSQL or RabbitMQ is away a worker holds what it has,
takes nothing more and resumes by itself; nothing is dead-lettered, nothing done twice, and the
outage is logged once when it starts and once when it ends.

The worker runs as a real process behind a TCP proxy (tests/tcp_proxy.py): cutting the proxy
takes the server away from that worker only, as a stopped server or a broken network would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel

from services.catalogue import CATALOGUE
from services.intake.client import TicketPublisher
from shared.config import Settings
from shared.db import Pool
from shared.messaging import topology as messaging
from tests.helpers import WorkerProcess, WorkerProcesses, contact, depth, wait_until
from tests.ops.test_observability import get
from tests.tcp_proxy import TcpProxy, free_port

RATE = 20  # tickets a second, published straight to the broker all along
BURST = 400  # published at once just before PostgreSQL goes


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[WorkerProcesses]:
    started = WorkerProcesses(tmp_path)
    yield started
    await started.close()


async def readiness(port: int) -> dict[str, Any]:
    status, text = await get(port, "/readyz")
    body: dict[str, Any] = json.loads(text)
    assert (status == 200) == body["ready"]
    return body


async def publish_for(settings: Settings, seconds: float, prefix: str) -> int:
    """Publish RATE contacts a second for `seconds`; returns how many."""
    n = 0
    async with TicketPublisher(settings.amqp_url, producer="load") as publisher:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * RATE) + 1
            await publisher.publish_many(
                [contact(f"{prefix}-{i}", subject="这个有货吗?") for i in range(n, due)]
            )
            n = due
            await asyncio.sleep(0.05)
    return n


async def count(db: Pool, sql: str) -> int:
    n = await db.fetchval(sql)
    assert isinstance(n, int)
    return n


async def dead_letters(channel: AbstractChannel) -> int:
    return sum(
        [await depth(channel, messaging.dead_letter_queue(q)) for q in CATALOGUE.queue_names]
    )


def outage_lines(worker: WorkerProcess, dependency: str) -> Counter[str]:
    return Counter(
        line["event"]
        for line in worker.lines()
        if line.get("dependency") == dependency and line["event"].startswith("outage_")
    )


def repeated_complaints(lines: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Warnings and errors logged more than once, by event (library records by their text)."""
    complaints = Counter(
        str(line["event"])[:80] for line in lines if line.get("level") in ("warning", "error")
    )
    return {event: n for event, n in complaints.items() if n > 1}


async def test_a_database_outage_under_load_dead_letters_nothing_and_creates_each_ticket_once(
    settings: Settings, channel: AbstractChannel, db: Pool, workers: WorkerProcesses
) -> None:
    proxy, worker, port = await behind_proxy(workers, settings, "database_url")
    load: asyncio.Task[int] | None = None
    try:
        await wait_until(lambda: ready(worker, port), what="the worker ready")
        load = asyncio.create_task(publish_for(settings, 30.0, "db-outage"))
        await asyncio.sleep(4.0)
        # A burst first, so that the outage finds deliveries in the worker's hands.
        async with TicketPublisher(settings.amqp_url, producer="burst") as publisher:
            await publisher.publish_many([contact(f"burst-{i}") for i in range(BURST)])
        await proxy.cut()  # 20 s without PostgreSQL, under load

        async def paused() -> bool:
            return (await readiness(port)) == {
                "ready": False,
                "broker": True,
                "database": False,
                "consuming": False,
                "relay": False,
            }

        await wait_until(paused, what="unready and not consuming without PostgreSQL")
        await asyncio.sleep(18.0)
        assert (await readiness(port))["database"] is False
        assert await depth(channel, "intake") > 0, "the contacts wait in the queue meanwhile"
        await proxy.restore()
        published = await load + BURST

        async def all_created() -> bool:
            return worker.alive() and await count(db, "SELECT count(*) FROM tickets") == published

        await wait_until(all_created, timeout=90, what=f"{published} tickets")
        await wait_until(lambda: ready(worker, port), what="ready again")
        assert await worker.stop() == 0
    finally:
        if load is not None:
            load.cancel()  # still running if the test failed
        await proxy.close()
    assert published >= 25 * RATE + BURST
    assert await dead_letters(channel) == 0
    assert await depth(channel, "intake") == 0
    assert await count(db, "SELECT count(DISTINCT external_id) FROM tickets") == published
    assert await count(db, "SELECT count(*) FROM ticket_contacts") == published
    assert await count(db, "SELECT count(*) FROM inbox") == published
    assert outage_lines(worker, "database") == {"outage_started": 1, "outage_ended": 1}
    assert repeated_complaints(worker.lines()) == {}
    events = [line["event"] for line in worker.lines()]
    assert events.count("consuming_paused") == events.count("consuming_resumed") == 1
    [paused_line] = [line for line in worker.lines() if line["event"] == "consuming_paused"]
    assert paused_line["held"] > 0, "deliveries were held through the outage"
    assert "handling_failed" not in events


async def test_a_broker_outage_is_survived_and_logged_once(
    settings: Settings, channel: AbstractChannel, db: Pool, workers: WorkerProcesses
) -> None:
    proxy, worker, port = await behind_proxy(workers, settings, "amqp_url")
    load: asyncio.Task[int] | None = None
    try:
        await wait_until(lambda: ready(worker, port), what="the worker ready")
        load = asyncio.create_task(publish_for(settings, 20.0, "broker-outage"))
        await asyncio.sleep(4.0)
        await proxy.cut()  # 12 s without RabbitMQ, the contacts still published to it

        async def unready() -> bool:
            body = await readiness(port)
            return not body["broker"] and not body["consuming"]

        await wait_until(unready, what="unready without RabbitMQ")
        await asyncio.sleep(11.0)
        await proxy.restore()
        published = await load

        async def all_routed() -> bool:
            return (
                worker.alive()
                and await count(db, "SELECT count(*) FROM tickets") == published
                and await count(db, "SELECT count(*) FROM outbox") == 0
            )

        await wait_until(all_routed, timeout=60, what=f"{published} tickets created and routed")
        await wait_until(lambda: ready(worker, port), what="ready again")
        assert await worker.stop() == 0
    finally:
        if load is not None:
            load.cancel()  # still running if the test failed
        await proxy.close()
    assert await dead_letters(channel) == 0
    assert await depth(channel, "intake") == 0
    routed = await depth(channel, "presale") + await depth(channel, "aftersales")
    assert routed >= published, "every ticket routed (a copy at most for those in flight)"
    assert await count(db, "SELECT count(DISTINCT external_id) FROM tickets") == published
    assert outage_lines(worker, "broker") == {"outage_started": 1, "outage_ended": 1}
    assert repeated_complaints(worker.lines()) == {}


async def behind_proxy(
    workers: WorkerProcesses, settings: Settings, server: str
) -> tuple[TcpProxy, WorkerProcess, int]:
    """An intake worker whose `server` URL setting goes through a TCP proxy of its own; the
    proxy, the worker and its metrics port."""
    url = getattr(settings, server)
    proxy = TcpProxy(url)
    await proxy.restore()
    port = free_port()
    worker = workers.start(
        "intake", settings.model_copy(update={server: proxy.url(url), "metrics_port": port})
    )
    return proxy, worker, port


async def ready(worker: WorkerProcess, port: int) -> bool:
    return worker.alive() and await _answers(port) and (await readiness(port))["ready"]


async def _answers(port: int) -> bool:
    try:
        await get(port, "/healthz")
    except OSError:
        return False
    return True
