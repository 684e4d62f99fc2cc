"""A small client for upstream Python systems that publish tickets.

    async with TicketPublisher(amqp_url, producer="im-gateway") as publisher:
        await publisher.publish(SubmitTicket(...))

Publishers in other languages need only `contracts/` (JSON Schema + AsyncAPI): put the envelope
JSON on exchange `ticketq` with routing key `intake`, persistent, with publisher confirms.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from services.catalogue import CATALOGUE
from services.intake.contracts import SubmitTicket
from shared.messaging import amqp
from shared.messaging.envelope import Envelope
from shared.messaging.topology import EXCHANGE, amqp_message, publish_all

INTAKE_QUEUE = CATALOGUE.of(SubmitTicket).queues[0]
# Published in contracts/README.md: publishers in other languages derive the same ids. Never change.
CONTACT_ID_NAMESPACE = uuid.UUID("6f1c2b7e-4d0a-5c55-9a57-2d1f7e0c9b10")


def contact_message_id(ticket: SubmitTicket) -> str:
    """The same contact always gets the same message id, so a re-publish is a no-op early."""
    return str(uuid.uuid5(CONTACT_ID_NAMESPACE, f"{ticket.source}\x1f{ticket.external_id}"))


class TicketPublisher:
    def __init__(self, amqp_url: str, *, producer: str) -> None:
        self.amqp_url = amqp_url
        self.producer = producer
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def __aenter__(self) -> TicketPublisher:
        self._connection = await amqp.connect_robust(self.amqp_url, name=self.producer)
        channel: AbstractChannel = await self._connection.channel(on_return_raises=True)
        self._exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def publish(self, ticket: SubmitTicket, *, message_id: str | None = None) -> str:
        """Publish one contact and wait for the broker's confirm; returns the message id."""
        return (await self.publish_many([ticket], message_ids=[message_id]))[0]

    async def publish_many(
        self, tickets: Iterable[SubmitTicket], *, message_ids: Iterable[str | None] | None = None
    ) -> list[str]:
        """Publish several, confirms awaited together."""
        assert self._exchange is not None, "use `async with TicketPublisher(...)`"
        tickets = list(tickets)
        ids = list(message_ids) if message_ids is not None else [None] * len(tickets)
        envelopes = [
            Envelope.wrap(t, producer=self.producer, message_id=mid or contact_message_id(t))
            for t, mid in zip(tickets, ids, strict=True)
        ]
        await publish_all((self._exchange, INTAKE_QUEUE, amqp_message(e)) for e in envelopes)
        return [e.message_id for e in envelopes]


async def publish_ticket(
    amqp_url: str, ticket: SubmitTicket, *, producer: str = "python-client"
) -> str:
    """Publish one contact with a connection of its own; returns the message id."""
    async with TicketPublisher(amqp_url, producer=producer) as publisher:
        return await publisher.publish(ticket)


async def publish_raw(
    amqp_url: str, bodies: Iterable[Mapping[str, Any] | str | bytes], *, queue: str = INTAKE_QUEUE
) -> None:
    """Publish bodies as they are, valid or not (fixtures, tests of bad input)."""
    connection = await amqp.connect_robust(amqp_url, name="publish-raw")
    async with connection:
        channel = await connection.channel(on_return_raises=True)
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        messages = []
        for body in bodies:
            raw = (
                body
                if isinstance(body, bytes)
                else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
            )
            message_id = body.get("message_id") if isinstance(body, Mapping) else None
            messages.append(
                (
                    exchange,
                    queue,
                    aio_pika.Message(
                        raw,
                        message_id=str(message_id or uuid.uuid4()),
                        type=str(body.get("type")) if isinstance(body, Mapping) else None,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                )
            )
        await publish_all(messages)
