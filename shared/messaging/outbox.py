"""The outbox relay: publishes committed outbox rows with confirms, then deletes them.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so every replica can run a relay. A crash
between the broker's confirm and the delete publishes those rows again on restart: the
receivers' inboxes drop the copies (same message id). Nothing uncommitted is ever seen here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange

from shared.config import Settings
from shared.db import Pool
from shared.failpoints import failpoint
from shared.messaging import topology as messaging

log = structlog.get_logger(__name__)

_HOUSEKEEPING_EVERY = 3600.0  # seconds between inbox retention sweeps


class OutboxRelay:
    def __init__(self, *, pool: Pool, channel: AbstractChannel, settings: Settings) -> None:
        self.pool = pool
        self.channel = channel
        self.settings = settings
        self._wakeup = asyncio.Event()
        self._exchanges: dict[str, AbstractExchange] = {}
        self._last_housekeeping = 0.0

    def notify(self) -> None:
        """Something was committed to the outbox: publish it now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            self._wakeup.clear()
            try:
                sent = await self.publish_batch()
                await self._housekeeping()
                backoff = 0.1
            except Exception:
                # Broker or database away: the rows stay; try again with backoff.
                log.warning("outbox_relay_failed", retry_in=backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent < self.settings.relay_batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.settings.relay_idle_poll)

    async def publish_batch(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, message_id, exchange, routing_key, type, ticket_id, body, headers
                   FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self.settings.relay_batch,
            )
            if not rows:
                return 0
            messages = []
            for row in rows:
                exchange = await self._exchange(row["exchange"])
                message = aio_pika.Message(
                    body=row["body"],
                    message_id=row["message_id"],
                    type=row["type"],
                    correlation_id=row["ticket_id"],
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers=row["headers"],
                )
                messages.append((exchange, row["routing_key"], message))
            await messaging.publish_all(messages)
            failpoint("relay_after_publish")
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        return len(rows)

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = await self.channel.get_exchange(name)
        return self._exchanges[name]

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_housekeeping < _HOUSEKEEPING_EVERY:
            return
        self._last_housekeeping = now
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM inbox WHERE received_at < now() - make_interval(days => $1)",
                self.settings.inbox_retention_days,
            )
        log.info("inbox_pruned", result=status)
