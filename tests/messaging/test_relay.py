"""The outbox relay settles each row on its own (SPEC §10, issue 16).

A row the broker can never deliver is set aside with the reason and counted; the rows beside
it are published exactly once, however many rounds it takes; rows beyond the batch size all
flow; and a relay whose rows the broker refuses (its queue full) shows on /readyz until they
go through.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from aio_pika.abc import AbstractChannel

from services.catalogue import CATALOGUE
from services.intake.worker import SERVICE as INTAKE
from shared.bootstrap import start_service
from shared.config import Settings
from shared.db import Pool
from shared.messaging import topology as messaging
from tests.helpers import depth, take_all, wait_until
from tests.ops.test_observability import get, sample


async def write_rows(
    db: Pool, routing_keys: list[str], *, exchange: str = messaging.EXCHANGE
) -> list[str]:
    """Outbox rows as a handler's transaction writes them, one per routing key; their ids."""
    ids = [str(uuid.uuid4()) for _ in routing_keys]
    await db.executemany(
        """INSERT INTO outbox (message_id, exchange, routing_key, type, body)
           VALUES ($1, $2, $3, 'test.handoff', $4)""",
        [
            (message_id, exchange, key, b'{"n": %d}' % n)
            for n, (message_id, key) in enumerate(zip(ids, routing_keys, strict=True))
        ],
    )
    return ids


async def outbox_empty(db: Pool) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM outbox") == 0)


async def readiness(port: int) -> dict[str, Any]:
    _, text = await get(port, "/readyz")
    body: dict[str, Any] = json.loads(text)
    return body


async def test_an_undeliverable_row_is_set_aside_and_the_others_are_published_once(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    service = await start_service(
        INTAKE, settings.model_copy(update={"relay_batch": 5, "metrics_port": 0})
    )
    port = service.metrics_port
    assert port
    try:
        await wait_until(lambda: _ready(port), what="ready")
        set_aside_before = await sample(port, "ticketq_outbox_set_aside_total")
        # The queue that is gone comes first: on main it failed the round and every row of
        # the batch was published again on each retry; and 12 rows are more than one batch.
        [gone] = await write_rows(db, ["gone"])
        good = await write_rows(db, ["finance"] * 12)
        [no_exchange] = await write_rows(db, ["finance"], exchange="ticketq.old")
        good += await write_rows(db, ["finance"] * 3)

        await wait_until(lambda: outbox_empty(db), what="the outbox drained")
        assert (await readiness(port))["relay"] is True, "a row set aside stalls nothing"
        assert await sample(port, "ticketq_outbox_set_aside_total") == set_aside_before + 2
    finally:
        await service.stop()

    received = Counter(m.message_id for m in await take_all(channel, "finance"))
    assert received == Counter(good), "each row published exactly once"
    unroutable, missing = await db.fetch(
        "SELECT message_id, routing_key, reason FROM outbox_set_aside ORDER BY id"
    )
    assert (unroutable["message_id"], unroutable["routing_key"]) == (gone, "gone")
    assert "312 NO_ROUTE" in unroutable["reason"] and "'gone'" in unroutable["reason"]
    assert missing["message_id"] == no_exchange
    assert "no exchange 'ticketq.old'" in missing["reason"]


async def test_a_relay_the_broker_refuses_is_unready_until_its_rows_go_through(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    # The finance queue holds 3 messages: over that, with reject-publish overflow, the broker
    # refuses (nacks) more.
    limited = settings.model_copy(update={"queue_max_length": 3, "metrics_port": 0})
    for name in CATALOGUE.queue_names:
        await channel.queue_delete(name)
        await channel.queue_delete(messaging.dead_letter_queue(name))
    await messaging.declare_topology(channel, limited, CATALOGUE.queue_names)
    service = await start_service(INTAKE, limited)
    port = service.metrics_port
    assert port
    try:
        await wait_until(lambda: _ready(port), what="ready")
        # A quorum queue refuses once it is over its bound, not at it: 4 get in.
        filler = await write_rows(db, ["finance"] * 4)

        async def full() -> bool:
            return await outbox_empty(db) and await depth(channel, "finance") == 4

        await wait_until(full, what="the finance queue full")
        ids = await write_rows(db, ["finance"] * 3)

        async def stalled() -> bool:
            return (await readiness(port))["relay"] is False

        await wait_until(stalled, what="/readyz reporting the stalled relay")
        assert (await get(port, "/readyz"))[0] == 503
        assert await sample(port, "ticketq_outbox_refused") == 3
        received = [m.message_id for m in await take_all(channel, "finance")]
        assert Counter(received) == Counter(filler)

        async def flowing() -> bool:
            received.extend(m.message_id for m in await take_all(channel, "finance"))
            return await outbox_empty(db) and await _ready(port)

        await wait_until(flowing, what="the refused rows published and the relay ready")
    finally:
        await service.stop()
    assert Counter(received) == Counter(filler + ids), "each row published exactly once"


async def _ready(port: int) -> bool:
    return (await get(port, "/readyz"))[0] == 200
