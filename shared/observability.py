"""Prometheus metrics, `/healthz` and `/readyz` for each worker (SPEC §9).

One small WSGI app on the worker's metrics port: `/metrics` is prometheus-client's own app,
`/healthz` answers while the process lives, `/readyz` answers 200 only while the worker is
connected to the broker and the database, is consuming (it pauses while the database is away)
and its outbox relay is not stalled (rounds failing, or rows the broker refused waiting). A
sampler task refreshes the readiness checks and the gauges (queue depth and consumers by
passive declare, outbox backlog).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import make_server

import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from shared.db import Pool
from shared.dependencies import Dependency
from shared.messaging import topology as messaging

log = structlog.get_logger(__name__)

MESSAGES = Counter(
    "ticketq_messages_handled_total", "Messages handled, by outcome", ["queue", "type", "outcome"]
)
HANDLING_SECONDS = Histogram(
    "ticketq_handling_seconds",
    "Time from delivery to ack, per message",
    ["queue", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RETRIES = Counter("ticketq_retries_total", "Extra tries after a transient failure", ["queue"])
DEAD_LETTERED = Counter(
    "ticketq_dead_lettered_total", "Messages this worker dead-lettered", ["queue", "reason"]
)
OUTBOX_BACKLOG = Gauge("ticketq_outbox_backlog", "Committed messages not yet published")
OUTBOX_REFUSED = Gauge(
    "ticketq_outbox_refused", "Outbox rows the broker refused (nack) and that wait for a retry"
)
OUTBOX_SET_ASIDE = Counter(
    "ticketq_outbox_set_aside_total",
    "Outbox rows set aside as undeliverable (table outbox_set_aside says why)",
)
QUEUE_DEPTH = Gauge("ticketq_queue_depth", "Ready messages in a queue", ["queue"])
QUEUE_CONSUMERS = Gauge("ticketq_queue_consumers", "Consumers of a queue", ["queue"])
READY = Gauge("ticketq_ready", "1 while the worker is ready (broker, database, consuming)")


def record_handled(
    queue: str, message_type: str, outcome: str, seconds: float, tries: int, reason: str | None
) -> None:
    MESSAGES.labels(queue, message_type, outcome).inc()
    HANDLING_SECONDS.labels(queue, message_type).observe(seconds)
    if tries > 1:
        RETRIES.labels(queue).inc(tries - 1)
    if reason is not None:
        DEAD_LETTERED.labels(queue, reason).inc()


@dataclass
class Readiness:
    checks: dict[str, bool] = field(
        default_factory=lambda: {
            "broker": False,
            "database": False,
            "consuming": False,
            "relay": False,
        }
    )

    @property
    def ready(self) -> bool:
        return all(self.checks.values())


def health_app(readiness: Readiness) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, 200, {"status": "alive"})
        if path == "/readyz":
            ready = readiness.ready
            return _json(
                start_response, 200 if ready else 503, {"ready": ready, **readiness.checks}
            )
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def _json(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> list[bytes]:
    text = {200: "200 OK", 503: "503 Service Unavailable"}[status]
    start_response(text, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def serve(readiness: Readiness, host: str, port: int) -> ThreadingWSGIServer:
    """Serve in a daemon thread; port 0 picks a free one (read it from `server_port`)."""
    server = make_server(
        host, port, health_app(readiness), ThreadingWSGIServer, handler_class=_SilentHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics_serving", host=host, port=server.server_port)
    return server


async def sample_forever(
    readiness: Readiness,
    *,
    database: Dependency,
    broker: Dependency,
    connection: AbstractRobustConnection,
    pool: Pool,
    queues: Sequence[str],
    is_consuming: Callable[[], bool],
    relay_running: Callable[[], bool],
    every: float = 1.0,
) -> None:
    """Refresh readiness and gauges; a failed check makes the worker unready, never stops it."""
    channel: AbstractChannel | None = None
    refused = 0

    async def sample_broker() -> None:
        nonlocal channel
        if channel is None or channel.is_closed:
            channel = await connection.channel()
        for name in (*queues, *map(messaging.dead_letter_queue, queues)):
            depth, consumers = await messaging.queue_stats(channel, name)
            QUEUE_DEPTH.labels(name).set(depth)
            QUEUE_CONSUMERS.labels(name).set(consumers)

    async def sample_database() -> None:
        nonlocal refused
        row = await pool.fetchrow(
            "SELECT count(*) AS backlog, count(*) FILTER (WHERE attempts > 0) AS refused"
            " FROM outbox"
        )
        assert row is not None
        OUTBOX_BACKLOG.set(row["backlog"])
        OUTBOX_REFUSED.set(row["refused"])
        refused = row["refused"]

    while True:
        readiness.checks["database"] = await database.check()
        readiness.checks["broker"] = await broker.check()
        if readiness.checks["database"]:
            await _succeeds(sample_database())
        if readiness.checks["broker"]:
            await _succeeds(sample_broker())
        readiness.checks["consuming"] = readiness.checks["broker"] and is_consuming()
        readiness.checks["relay"] = relay_running() and refused == 0
        READY.set(1 if readiness.ready else 0)
        await asyncio.sleep(every)


async def _succeeds(probe: Awaitable[None]) -> bool:
    try:
        await asyncio.wait_for(probe, timeout=2.0)
    except Exception:
        return False
    return True
