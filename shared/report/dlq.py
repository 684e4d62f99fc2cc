"""How many messages wait in each dead-letter queue, by passive declares; an unreachable broker
is said in the report, not a failure of it."""

from __future__ import annotations

from typing import Any

import aiormq

from services.catalogue import CATALOGUE
from shared.dependencies import describe
from shared.messaging import amqp
from shared.messaging.topology import dead_letter_queue, queue_stats


async def dlq_counts(amqp_url: str, *, connect_within: float = 5.0) -> dict[str, Any]:
    """{"queues": {dlq: ready messages or None when not declared}} or {"error": why not}."""
    try:
        connection = await amqp.connect(
            amqp_url, name="ticketq-report", node_timeout=connect_within
        )
    except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
        return {"error": f"broker unreachable: {describe(exc)}"}
    counts: dict[str, int | None] = {}
    try:
        for queue in CATALOGUE.queue_names:
            dlq = dead_letter_queue(queue)
            # A failed passive declare closes its channel: one channel per queue.
            channel = await connection.channel()
            try:
                counts[dlq] = (await queue_stats(channel, dlq))[0]
            except aiormq.exceptions.ChannelNotFoundEntity:
                counts[dlq] = None
            finally:
                if not channel.is_closed:
                    await channel.close()
    finally:
        await connection.close()
    return {"queues": counts}
