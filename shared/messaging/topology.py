"""The whole RabbitMQ topology, declared in one place, and publishing with confirms.

Topology: a topic exchange `ticketq` routes by queue name to one durable quorum queue per
service (topic, not direct, only so that RabbitMQ checks each user's routing keys: every
binding key is a plain queue name); each queue dead-letters to the direct exchange
`ticketq.dlx`, which routes to the queue's own `<queue>.dlq`. Declaring it again with the same
settings is a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from shared.config import Settings
from shared.messaging import amqp, amqp_headers
from shared.messaging.envelope import Envelope

EXCHANGE = "ticketq"
DEAD_LETTER_EXCHANGE = "ticketq.dlx"
# Answers to requests: a requester binds its reply queue here (routing key: the queue's name),
# so a worker that answers may publish to reply queues and nowhere else (the default exchange
# would let it write into any queue by name, which no permission can narrow).
REPLY_EXCHANGE = "ticketq.replies"

# Our own headers (no `x-` prefix: RabbitMQ 3.13+ reserves those for the broker).
# A session token, or a sign-in's password (`shared.agents.identity`): never copied on.
AUTHORIZATION = "authorization"
ATTEMPT = "tq-attempt"  # which pass through the pipeline this is: 1, or more after replays
DL_REASON = "tq-dl-reason"
DL_ERROR = "tq-dl-error"
DL_QUEUE = "tq-dl-queue"
DL_ATTEMPTS = "tq-dl-attempts"
DL_AT = "tq-dl-at"
DL_SERVICE = "tq-dl-service"


class DeadLetterReason(StrEnum):
    """Why a worker moved a message to its queue's DLQ (header `tq-dl-reason`)."""

    MALFORMED_JSON = "malformed_json"
    INVALID_CONTRACT = "invalid_contract"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID_PROPERTIES = "invalid_properties"
    HANDLER_ERROR = "handler_error"
    RETRIES_EXHAUSTED = "retries_exhausted"


# The first five are the publisher's to fix: the same body would be refused again.
DEAD_LETTER_REASONS: dict[DeadLetterReason, str] = {
    DeadLetterReason.MALFORMED_JSON: "the body is not UTF-8 JSON",
    DeadLetterReason.INVALID_CONTRACT: (
        "the envelope or the payload does not match its schema (`tq-dl-error` lists the field"
        " paths and messages, never the values)"
    ),
    DeadLetterReason.UNKNOWN_TYPE: "the queue takes no message of this `type`",
    DeadLetterReason.UNSUPPORTED_VERSION: (
        "the service reads another `schema_version` of this `type`"
    ),
    DeadLetterReason.INVALID_PROPERTIES: (
        "the AMQP properties: a content type other than application/json, a `reply_to` that"
        " names no reply queue, or a header table nested too deep or unreadable"
    ),
    DeadLetterReason.HANDLER_ERROR: (
        "the service failed on the message with an error that is not transient"
    ),
    DeadLetterReason.RETRIES_EXHAUSTED: (
        "a transient error outlasted every retry while the database answered"
    ),
}


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dlq"


# Reading a DLQ (ops tools return what they do not take) counts as a delivery, and RabbitMQ
# 4.x gives quorum queues a default delivery limit of 20 past which, with no DLX, messages
# are dropped: set one no inspection will reach. (-1 is no answer: 3.10 drops at once.)
DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-delivery-limit": 1_000_000,
}


def queue_arguments(queue: str, settings: Settings) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": queue,
        # A message that kills its consumer again and again is dead-lettered, not looped on.
        "x-delivery-limit": settings.delivery_limit,
        # Broker dead-lettering is at-most-once unless at-least-once, which needs
        # reject-publish overflow and a length bound.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-max-length": settings.queue_max_length,
    }


async def declare_topology(
    channel: AbstractChannel, settings: Settings, queues: Iterable[str]
) -> None:
    """Declare the exchanges, and each queue (`Catalogue.queue_names`) with its DLQ."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    await channel.declare_exchange(REPLY_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    for name in queues:
        queue = await channel.declare_queue(
            name, durable=True, arguments=queue_arguments(name, settings)
        )
        await queue.bind(exchange, routing_key=name)
        dlq = await channel.declare_queue(
            dead_letter_queue(name), durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS
        )
        await dlq.bind(dlx, routing_key=name)


async def connect(settings: Settings, *, name: str) -> AbstractRobustConnection:
    amqp_headers.install()  # no header table can break the connection (see the module)
    return await amqp.connect_robust(settings.amqp_url, name=name)


def amqp_message(
    envelope: Envelope, *, body: bytes | None = None, headers: Mapping[str, Any] | None = None
) -> aio_pika.Message:
    """The AMQP message for an envelope; id, type and ticket mirrored in the properties."""
    return aio_pika.Message(
        body=body if body is not None else envelope.model_dump_json().encode(),
        message_id=envelope.message_id,
        type=envelope.type,
        correlation_id=envelope.correlation_id,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=envelope.sent_at,
        app_id=envelope.producer,
        headers=dict(headers or {}),
    )


PUBLISH_TIMEOUT = 30.0  # seconds for a broker's confirm


async def publish_all(
    messages: Iterable[tuple[AbstractExchange, str, aio_pika.Message]],
) -> None:
    """Publish concurrently and wait for every broker confirm; raises if any is refused, or
    is not confirmed within `PUBLISH_TIMEOUT` (a node lost mid-publish: the caller publishes
    again, and the message id makes a copy harmless).

    Confirms awaited together, not one by one: one at a time costs several times the throughput.
    """
    failures = [f for f in await publish_each(messages) if f is not None]
    if failures:
        raise failures[0]


async def publish_each(
    messages: Iterable[tuple[AbstractExchange, str, aio_pika.Message]],
) -> list[BaseException | None]:
    """`publish_all`, with what became of each message: None once confirmed, else what failed
    it (a publisher that sends again only what was not confirmed)."""
    results = await asyncio.gather(
        *(
            exchange.publish(msg, routing_key=key, mandatory=True, timeout=PUBLISH_TIMEOUT)
            for exchange, key, msg in messages
        ),
        return_exceptions=True,
    )
    return [r if isinstance(r, BaseException) else None for r in results]


def dead_letter_headers(
    *, reason: str, error: str, queue: str, attempts: int, service: str
) -> dict[str, Any]:
    return {
        DL_REASON: reason,
        DL_ERROR: error[:2000],
        DL_QUEUE: queue,
        DL_ATTEMPTS: attempts,
        DL_AT: datetime.now(UTC).isoformat(),
        DL_SERVICE: service,
    }


def copy_message(
    message: AbstractIncomingMessage, *, headers: Mapping[str, Any]
) -> aio_pika.Message:
    """The same message (body, id, type, ticket) with other headers: dead-lettering, replay.

    Never with its `authorization` header: a dead-letter queue is read by operators and kept,
    and a replay is not its sender's to make."""
    return aio_pika.Message(
        body=message.body,
        message_id=message.message_id,
        type=message.type,
        correlation_id=message.correlation_id,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=message.timestamp,
        app_id=message.app_id,
        headers={k: v for k, v in headers.items() if k != AUTHORIZATION},
    )


def credential_of(headers: Mapping[str, Any] | None) -> str | None:
    """The `authorization` header's secret (a session token, a sign-in's password), if any."""
    value = (headers or {}).get(AUTHORIZATION)
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) and value else None


async def queue_stats(channel: AbstractChannel, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue now, by a passive declare.

    Goes to the underlying channel: aio-pika's own declare_queue caches the first result.
    """
    underlay = await channel.get_underlay_channel()
    ok = await underlay.queue_declare(queue, passive=True)
    return ok.message_count or 0, ok.consumer_count or 0
