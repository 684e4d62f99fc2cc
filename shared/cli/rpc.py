"""Reaching the servers from the CLI: agent commands as AMQP request/reply, and the database.

A command travels like every other message (an `Envelope` of type `ticket.command`, persistent,
publisher-confirmed, exchange `ticketq`, routing key = the role's queue) with `reply_to` naming a
server-named, exclusive, auto-delete queue of this process. The worker answers there with a
`ticket.command_reply` envelope whose `causation_id` is the command's message id; anything else
arriving there is ignored.

Retrying is safe: the worker keeps its answer per message id, so the same command sent again with
the same message id (`--command-id`) is not applied twice and gets the same answer. A command whose
answer did not come in time may still be applied later; re-sending it with its id tells which.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import TypeAlias

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError
from pydantic import ValidationError

from shared.cli.output import Refused, Unreachable
from shared.config import Settings
from shared.messaging import EXCHANGE, amqp_message, queue_stats
from shared.models.base import Envelope, new_message_id
from shared.models.commands import CommandReply, TicketCommand
from shared.models.registry import AGENT_QUEUES, message_type_of

__all__ = ["Unreachable", "database", "queue_for", "send_command"]

DbConnection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"

PRODUCER = "cli"
REPLY_TYPE = message_type_of(CommandReply).name


def _where(url: str) -> str:
    """Host, port and path of a URL, never its credentials."""
    return url.rsplit("@", 1)[-1]


async def send_command(
    settings: Settings,
    queue: str,
    command: TicketCommand,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - the whole exchange's budget, connect included
    message_id: str | None = None,
    require_consumer: bool = True,
) -> CommandReply:
    """Send `command` to `queue` and wait for its answer, all within `timeout` seconds.

    `message_id` is the command's id: pass the id of an earlier attempt to re-send it (the
    worker answers a repeat with its first answer), or leave it out for a fresh one.
    With `require_consumer` (the default) nothing is sent when no worker consumes `queue`.
    Raises `Unreachable` when the broker cannot be reached, refuses the message, or no answer
    came in time.
    """
    if queue not in AGENT_QUEUES:
        raise ValueError(f"commands go to one of {', '.join(AGENT_QUEUES)}, not {queue!r}")
    envelope = Envelope.wrap(
        command,
        producer=PRODUCER,
        correlation_id=command.ticket_id,
        message_id=message_id or new_message_id(),
    )
    stage = "connect"
    try:
        async with asyncio.timeout(timeout):
            connection = await aio_pika.connect(
                settings.amqp_url,
                timeout=timeout,
                client_properties={"connection_name": f"{PRODUCER}:{command.actor_id}"},
            )
            async with connection:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                stage = "check"
                if require_consumer and (await queue_stats(channel, queue))[1] == 0:
                    raise Unreachable(
                        f"no {queue} worker is running (queue {queue!r} has no consumer); "
                        f"the command was not sent"
                    )
                answer: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
                reply_queue = await channel.declare_queue("", exclusive=True, auto_delete=True)

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
                        if reply.type != REPLY_TYPE:
                            raise ValueError(f"type {reply.type!r}, expected {REPLY_TYPE!r}")
                        answer.set_result(CommandReply.model_validate(reply.payload))
                    except (ValueError, ValidationError) as exc:
                        answer.set_exception(
                            Unreachable(f"the {queue} worker's answer is malformed: {exc}")
                        )

                await reply_queue.consume(on_reply, no_ack=True, exclusive=True)
                exchange = await channel.get_exchange(EXCHANGE)
                request = amqp_message(envelope)
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


# --------------------------------------------------------------------------------------------
# The database


@contextlib.asynccontextmanager
async def database(
    settings: Settings, *, connect_timeout: float = 10.0
) -> AsyncIterator[DbConnection]:
    """One connection to the system of record; failing to reach it raises `Unreachable`."""
    where = _where(settings.database_url)
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=connect_timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unreachable(
            f"cannot reach the database at {where}: {exc or type(exc).__name__}"
        ) from None
    try:
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        yield conn
    except asyncpg.UndefinedTableError as exc:
        raise Unreachable(
            f"the database at {where} has no ticketq schema ({exc}); run `ticketq db migrate`"
        ) from None
    except (OSError, asyncpg.ConnectionDoesNotExistError) as exc:
        raise Unreachable(f"lost the database at {where}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=2)


async def queue_for(conn: DbConnection, ticket_id: str) -> str:
    """The queue a command on the ticket goes to: its owner's role, or (while a supervisor owns
    it, SPEC §5.8) the role of its first handler, whose worker applies supervisor commands.

    Any desk would do: commands are deduplicated system-wide, so a re-sent command that lands
    on another desk (the ticket moved meanwhile) gets the first answer, not a second effect.
    """
    row = await conn.fetchrow(
        """SELECT owner_role,
                  coalesce(first_handler_role, state->>'first_handler_role') AS home_role
             FROM tickets WHERE id = $1""",
        ticket_id,
    )
    if row is None:
        raise Refused(f"no ticket {ticket_id!r}", code="unknown_ticket")
    for role in (row["owner_role"], row["home_role"]):
        if role in AGENT_QUEUES:
            return str(role)
    raise Refused(
        f"ticket {ticket_id} is owned by {row['owner_role']} and has no role queue to take "
        "commands",
        code="invalid_transition",
    )
