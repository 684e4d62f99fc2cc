"""Metrics move when messages are handled; /readyz follows the database (SPEC §9)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from aio_pika.abc import AbstractChannel
from prometheus_client.parser import text_string_to_metric_families

from services.intake.client import publish_raw, publish_ticket
from services.intake.worker import SERVICE as INTAKE
from shared.bootstrap import start_service
from shared.config import Settings
from tests.helpers import contact, depth, wait_until
from tests.tcp_proxy import TcpProxy


async def get(port: int, path: str) -> tuple[int, str]:
    def fetch() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    return await asyncio.to_thread(fetch)


async def sample(port: int, name: str, **labels: str) -> float:
    _, text = await get(port, "/metrics")
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


async def test_metrics_count_handled_and_dead_lettered_messages(
    settings: Settings, channel: AbstractChannel
) -> None:
    service = await start_service(INTAKE, settings.model_copy(update={"metrics_port": 0}))
    port = service.metrics_port
    assert port
    try:
        created = dict(queue="intake", type="ticket.submit", outcome="created")
        before = await sample(port, "ticketq_messages_handled_total", **created)
        dead_before = await sample(
            port, "ticketq_dead_lettered_total", queue="intake", reason="malformed_json"
        )
        await publish_ticket(settings.amqp_url, contact("m-1"))
        await publish_raw(settings.amqp_url, [b"not json"])
        await wait_until(lambda: _is(channel, "intake.dlq", 1), what="the dead letter")
        await wait_until(
            lambda: _metric_is(port, "ticketq_messages_handled_total", before + 1, created),
            what="the handled counter",
        )
        assert (
            await sample(
                port, "ticketq_dead_lettered_total", queue="intake", reason="malformed_json"
            )
            == dead_before + 1
        )
        assert await sample(port, "ticketq_handling_seconds_count", queue="intake") >= 1
        await wait_until(
            lambda: _metric_is(port, "ticketq_queue_depth", 1, {"queue": "intake.dlq"}),
            what="the sampled DLQ depth",
        )
        assert await sample(port, "ticketq_queue_consumers", queue="intake") == 1
        text = (await get(port, "/metrics"))[1]
        assert "ticketq_outbox_backlog" in text and "ticketq_retries_total" in text
        assert (await get(port, "/healthz"))[0] == 200
    finally:
        await service.stop()


async def test_readiness_follows_the_database_and_recovers_on_its_own(settings: Settings) -> None:
    # PostgreSQL is taken away from this worker only, behind a proxy: others share the server.
    proxy = TcpProxy(settings.database_url)
    await proxy.restore()
    service = await start_service(
        INTAKE,
        settings.model_copy(
            update={"database_url": proxy.url(settings.database_url), "metrics_port": 0}
        ),
    )
    port = service.metrics_port
    assert port
    try:
        await wait_until(lambda: _status_is(port, 200), what="ready")
        await proxy.cut()

        async def paused() -> bool:
            _, body = await get(port, "/readyz")
            checks: dict[str, bool] = json.loads(body)
            return checks == {
                "ready": False,
                "broker": True,
                "database": False,
                "consuming": False,  # it takes nothing it could not handle
                "relay": False,
            }

        await wait_until(paused, what="unready and paused without PostgreSQL")
        assert (await get(port, "/readyz"))[0] == 503
        assert (await get(port, "/healthz"))[0] == 200
        await proxy.restore()
        await wait_until(lambda: _status_is(port, 200), timeout=30, what="ready again")
    finally:
        await service.stop()
        await proxy.close()


async def _status_is(port: int, status: int) -> bool:
    return (await get(port, "/readyz"))[0] == status


async def _metric_is(port: int, name: str, value: float, labels: dict[str, str]) -> bool:
    return await sample(port, name, **labels) == value


async def _is(channel: AbstractChannel, queue: str, n: int) -> bool:
    return await depth(channel, queue) == n
