"""Test helpers: sample contacts, queue inspection, workers in-process and as processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared.bootstrap import Service, start_service
from shared.config import Settings
from shared.messaging import queue_stats
from shared.models.tickets import Channel, Customer, Order, SubmitTicket

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def contact(
    external_id: str,
    *,
    source: str = "im-gateway",
    subject: str = "这个有货吗?",
    text: str = "",
    order_id: str | None = None,
    paid: bool = True,
    shipped: bool = False,
    **fields: Any,
) -> SubmitTicket:
    order = None
    if order_id is not None:
        order = Order(
            id=order_id,
            amount=Decimal("59.00"),
            placed_at=T0 - timedelta(days=3),
            paid_at=T0 - timedelta(days=3) if paid else None,
            shipped_at=T0 - timedelta(days=2) if shipped else None,
        )
    return SubmitTicket(
        source=source,
        external_id=external_id,
        channel=fields.pop("channel", Channel.WANGWANG),
        customer=fields.pop("customer", Customer(id="c-1", nick="小王")),
        order=order,
        subject=subject,
        text=text,
        occurred_at=T0,
        **fields,
    )


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def depth(channel: AbstractChannel, queue: str) -> int:
    return (await queue_stats(channel, queue))[0]


async def take_all(channel: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    """Every message now in `queue`, removed (acked)."""
    q = await channel.get_queue(queue)
    taken = []
    while (message := await q.get(fail=False, no_ack=True)) is not None:
        taken.append(message)
    return taken


def body(message: AbstractIncomingMessage) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(message.body)
    return decoded


@asynccontextmanager
async def running(service: Service, settings: Settings) -> AsyncIterator[None]:
    """A worker in this process, stopped cleanly at the end."""
    handle = await start_service(service, settings)
    try:
        yield
    finally:
        await handle.stop()


class WorkerProcess:
    """A worker as a real OS process (`ticketq worker NAME`), for crash tests and replicas."""

    def __init__(
        self, name: str, settings: Settings, *, failpoints: str = "", log_path: Path
    ) -> None:
        env = {
            **os.environ,
            "TICKETQ_AMQP_URL": settings.amqp_url,
            "TICKETQ_DATABASE_URL": settings.database_url,
            "TICKETQ_RELAY_IDLE_POLL": "0.05",
            "TICKETQ_FAILPOINTS": failpoints,
            "TICKETQ_LOG_LEVEL": "info",
        }
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli.main", "worker", name],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    async def wait_exit(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.proc.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker did not exit; log:\n{self.log()}")
            await asyncio.sleep(0.05)
        return code

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await self.wait_exit()
        self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
