"""The upstream client, `TicketPublisher`, when the broker goes away mid-publish: every call
returns once its contacts are confirmed, and each contact becomes exactly one ticket."""

from __future__ import annotations

import asyncio
import time

from aio_pika.abc import AbstractChannel

from services.intake.client import TicketPublisher
from services.intake.worker import SERVICE as INTAKE
from shared.config import Settings
from shared.db import Pool
from shared.messaging.topology import dead_letter_queue
from tests.helpers import contact, depth, running, wait_until
from tests.tcp_proxy import TcpProxy

BATCHES, SIZE = 40, 10
OUTAGE = 2.0  # seconds without the broker


async def test_a_publisher_cut_off_mid_publish_sends_again_and_makes_each_ticket_once(
    settings: Settings, db: Pool, channel: AbstractChannel
) -> None:
    proxy = TcpProxy(settings.amqp_url)
    await proxy.restore()
    published: list[str] = []
    longest = 0.0  # the longest publish_many call: it rode through the outage

    async def publish() -> None:
        nonlocal longest
        async with TicketPublisher(proxy.url(settings.amqp_url), producer="upstream") as pub:
            for b in range(BATCHES):
                started = time.monotonic()
                published.extend(
                    await pub.publish_many(contact(f"cut-{b}-{i}") for i in range(SIZE))
                )
                longest = max(longest, time.monotonic() - started)
                await asyncio.sleep(0.05)

    try:
        async with running(INTAKE, settings):
            load = asyncio.create_task(publish())
            await wait_until(lambda: _at_least(published, SIZE * 5), what="some published")
            await proxy.cut()  # the connection dies under the publisher, confirms unsent
            await asyncio.sleep(OUTAGE)
            await proxy.restore()
            await asyncio.wait_for(load, 60)

            async def created() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM tickets") == BATCHES * SIZE)

            await wait_until(created, timeout=30, what="every ticket")
    finally:
        await proxy.close()
    assert len(set(published)) == BATCHES * SIZE
    assert longest >= OUTAGE  # a call was caught by the cut and waited for the broker
    assert await db.fetchval("SELECT count(*) FROM ticket_contacts") == BATCHES * SIZE
    assert await depth(channel, dead_letter_queue("intake")) == 0


async def _at_least(published: list[str], n: int) -> bool:
    return len(published) >= n
