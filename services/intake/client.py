"""A small client for upstream Python systems that publish tickets.

    async with TicketPublisher(amqp_url, producer="im-gateway") as publisher:
        await publisher.publish(SubmitTicket(...))

Publishers in other languages need only `contracts/` (JSON Schema + AsyncAPI): put the envelope
JSON on exchange `ticketq` with routing key `intake`, persistent, with publisher confirms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from services.catalogue import CATALOGUE
from services.intake.contracts import SubmitTicket
from shared.messaging import amqp
from shared.messaging.envelope import Envelope
from shared.messaging.topology import EXCHANGE, amqp_message, publish_all, publish_each

log = structlog.get_logger(__name__)

INTAKE_QUEUE = CATALOGUE.of(SubmitTicket).queues[0]
# Published in contracts/README.md: publishers in other languages derive the same ids. Never change.
CONTACT_ID_NAMESPACE = uuid.UUID("6f1c2b7e-4d0a-5c55-9a57-2d1f7e0c9b10")


def contact_message_id(ticket: SubmitTicket) -> str:
    """The same contact always gets the same message id, so a re-publish is a no-op early."""
    return str(uuid.uuid5(CONTACT_ID_NAMESPACE, f"{ticket.source}\x1f{ticket.external_id}"))


def _worth_another_try(exc: BaseException) -> bool:
    """The broker or its node went away, did not confirm in time, or refused for now (a full
    queue's nack); not a contact that can never be routed (returned: no intake queue)."""
    if isinstance(exc, aiormq.exceptions.PublishError):
        return False
    return isinstance(exc, (*CONNECTION_EXCEPTIONS, TimeoutError))


class TicketPublisher:
    """Publishes contacts to intake with the broker's confirms.

    A publish the broker did not confirm (its node died, the connection dropped, no confirm
    within `PUBLISH_TIMEOUT`, a full queue refused it) is sent again with the same message id,
    on a fresh channel once the connection is back (at the next node of a cluster's URLs), with
    backoff, for up to `give_up_after` seconds; intake's inbox makes any copy a no-op. A robust
    channel caught mid-publish by a node's death may never publish again, so it is dropped.
    """

    def __init__(self, amqp_url: str, *, producer: str, give_up_after: float = 120.0) -> None:
        self.amqp_url = amqp_url
        self.producer = producer
        self.give_up_after = give_up_after
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    async def __aenter__(self) -> TicketPublisher:
        self._connection = await amqp.connect_robust(self.amqp_url, name=self.producer)
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
        """Publish several, confirms awaited together; returns once every one is confirmed."""
        assert self._connection is not None, "use `async with TicketPublisher(...)`"
        tickets = list(tickets)
        ids = list(message_ids) if message_ids is not None else [None] * len(tickets)
        envelopes = [
            Envelope.wrap(t, producer=self.producer, message_id=mid or contact_message_id(t))
            for t, mid in zip(tickets, ids, strict=True)
        ]
        # By position: a batch may hold one contact twice, and publishes it twice.
        unconfirmed = {i: amqp_message(e) for i, e in enumerate(envelopes)}
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(self.give_up_after),
            wait=wait_exponential_jitter(multiplier=0.1, max=5.0),
            retry=retry_if_exception(_worth_another_try),
            before_sleep=lambda state: log.warning(
                "publish_unconfirmed",
                unconfirmed=len(unconfirmed),
                tries=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None,
            ),
            reraise=True,
        ):
            with attempt:
                await self._publish(unconfirmed)
        return [e.message_id for e in envelopes]

    async def _publish(self, unconfirmed: dict[int, aio_pika.Message]) -> None:
        """Publish what is not confirmed yet; the confirmed leave `unconfirmed`. Raises the
        first failure, the channel dropped if the broker or the connection failed it."""
        try:
            if self._channel is None:
                assert self._connection is not None
                self._channel = await self._connection.channel(on_return_raises=True)
            exchange = await self._channel.get_exchange(EXCHANGE, ensure=False)
        except BaseException:
            await self._drop_channel()
            raise
        results = await publish_each((exchange, INTAKE_QUEUE, m) for m in unconfirmed.values())
        for position, failure in zip(list(unconfirmed), results, strict=True):
            if failure is None:
                del unconfirmed[position]
        if failures := [f for f in results if f is not None]:
            if not all(isinstance(f, aiormq.exceptions.DeliveryError) for f in failures):
                await self._drop_channel()  # the channel failed, not the broker's verdict
            raise failures[0]

    async def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS, TimeoutError):
                await asyncio.wait_for(channel.close(), 2)


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
