"""Request/reply over AMQP: send a command to a queue and wait for its answer.

A request travels like every other message (an `Envelope`, persistent, publisher-confirmed,
exchange `ticketq`, routing key = the queue the catalogue names for its type) with `reply_to`
naming a server-named, exclusive, auto-delete queue of this process, bound to exchange
`ticketq.replies` under its own name. The worker answers there, through that exchange,
with an envelope of the reply's type whose `causation_id` is the request's message id; anything
else arriving there is ignored.

Retrying is safe: the worker keeps its answer per message id, so the same command sent again with
the same message id (`--command-id`) is not applied twice and gets the same answer. A command whose
answer did not come in time may still be applied later; re-sending it with its id tells which.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TypeVar

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError
from pydantic import ValidationError

from shared.cli.output import Unreachable
from shared.config import Settings
from shared.messaging import amqp
from shared.messaging.amqp import where as _where
from shared.messaging.envelope import Contract, Envelope, new_message_id
from shared.messaging.topology import EXCHANGE, REPLY_EXCHANGE, amqp_message, queue_stats

__all__ = ["Unreachable", "request"]

PRODUCER = "cli"
R = TypeVar("R", bound=Contract)


async def request(
    settings: Settings,
    queue: str,
    command: Contract,
    reply_type: type[R],
    *,
    correlation_id: str | None,
    sender: str,
    timeout: float = 10.0,  # noqa: ASYNC109 - the whole exchange's budget, connect included
    message_id: str | None = None,
    require_consumer: bool = True,
    headers: Mapping[str, str] | None = None,
) -> R:
    """Send `command` to `queue` and wait for its `reply_type` answer, all within `timeout` s.

    `message_id` is the command's id: pass the id of an earlier attempt to re-send it (the
    worker answers a repeat with its first answer), or leave it out for a fresh one.
    With `require_consumer` (the default) nothing is sent when no worker consumes `queue`.
    `headers` go with the request (a session token in `authorization`); they are not logged.
    Raises `Unreachable` when the broker cannot be reached, refuses the message, or no answer
    came in time.
    """
    envelope = Envelope.wrap(
        command,
        producer=PRODUCER,
        correlation_id=correlation_id,
        message_id=message_id or new_message_id(),
    )
    stage = "connect"
    try:
        async with asyncio.timeout(timeout):
            connection = await amqp.connect(
                settings.amqp_url, name=f"{PRODUCER}:{sender}", node_timeout=timeout
            )
            async with connection:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                stage = "check"
                if require_consumer and (await queue_stats(channel, queue))[1] == 0:
                    raise Unreachable(
                        f"no {queue} worker is running (queue {queue!r} has no consumer); "
                        f"the command was not sent"
                    )
                answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
                reply_queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
                await reply_queue.bind(REPLY_EXCHANGE, routing_key=reply_queue.name)

                async def on_reply(message: AbstractIncomingMessage) -> None:
                    if answer.done():
                        return
                    try:
                        reply = Envelope.model_validate_json(message.body)
                    except ValidationError:
                        return  # not an envelope: not our answer
                    if reply.causation_id != envelope.message_id:
                        return  # an answer to something else
                    try:
                        if reply.type != reply_type.TYPE:
                            raise ValueError(f"type {reply.type!r}, expected {reply_type.TYPE!r}")
                        answer.set_result(reply_type.model_validate(reply.payload))
                    except (ValueError, ValidationError) as exc:
                        answer.set_exception(
                            Unreachable(f"the {queue} worker's answer is malformed: {exc}")
                        )

                await reply_queue.consume(on_reply, no_ack=True, exclusive=True)
                exchange = await channel.get_exchange(EXCHANGE)
                request = amqp_message(envelope, headers=headers)
                request.reply_to = reply_queue.name
                stage = "publish"
                await exchange.publish(request, routing_key=queue, mandatory=True)
                stage = "answer"
                return await answer
    except TimeoutError:
        raise Unreachable(_timed_out(stage, settings, queue, timeout, envelope)) from None
    except aio_pika.exceptions.ChannelNotFoundEntity as exc:
        raise Unreachable(
            f"the broker at {_where(settings.amqp_url)} has no {EXCHANGE!r} exchange or "
            f"{queue!r} queue yet (start the workers first): {exc}"
        ) from None
    except aio_pika.exceptions.DeliveryError as exc:
        raise Unreachable(
            f"the broker did not take the command for {queue!r} ({exc}); it was not sent, "
            f"try again later"
        ) from None
    except (AMQPError, OSError) as exc:
        raise Unreachable(
            f"cannot reach the broker at {_where(settings.amqp_url)}: {exc or type(exc).__name__}"
        ) from None


def _timed_out(
    stage: str, settings: Settings, queue: str, timeout: float, envelope: Envelope
) -> str:
    if stage in ("connect", "check"):
        return f"the broker at {_where(settings.amqp_url)} did not answer within {timeout:g}s"
    return (
        f"no answer from the {queue} worker within {timeout:g}s; the command may still be "
        f"applied: re-send it with --command-id {envelope.message_id} to get its answer"
    )
