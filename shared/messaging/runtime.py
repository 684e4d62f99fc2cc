"""The one consumer runtime every worker uses.

For each delivery: decode and validate (invalid → dead-letter at once with the reason);
then, in one PostgreSQL transaction, record the message id in the inbox (a redelivered or
re-published message is then a no-op), run the handler, write the outgoing messages to the
outbox; commit; then ack. The outbox relay publishes what was committed. Transient failures
are retried with backoff, bounded; past the bound the message is dead-lettered with the reason,
unless the database was away meanwhile: an outage is not the message's fault (see `Worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from shared.clock import Clock, SystemClock
from shared.config import Settings
from shared.db import Connection, Pool, script
from shared.dependencies import Dependency
from shared.failpoints import failpoint
from shared.messaging import topology as messaging
from shared.messaging.amqp_headers import unreadable_headers
from shared.messaging.catalogue import MessageType
from shared.messaging.envelope import NUL_FREE, Contract, Envelope
from shared.messaging.topology import DeadLetterReason, amqp_message, credential_of
from shared.messaging.wire import CONTENT_TYPE, UnreadableJson, is_json_content_type, read_json
from shared.observability import record_handled

log = structlog.get_logger(__name__)

P = TypeVar("P", bound=Contract)

# Failures worth another try: the database or network hiccupped, or a concurrent
# transaction won a race (serialization, deadlock, a unique key taken meanwhile).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.UniqueViolationError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


class InvalidMessage(Exception):
    """The message can never be handled: dead-letter it at once."""

    def __init__(self, reason: DeadLetterReason, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class Incoming(Generic[P]):
    envelope: Envelope
    payload: P
    # The `authorization` header: a session token, or a sign-in's password
    # (`shared.agents.identity`). Never stored, logged or dead-lettered.
    credential: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a handler did, for the log line and metrics: e.g. `created`, `follow_up`."""

    label: str
    ticket_id: str | None = None


@dataclass
class Transaction:
    """A handler's unit of work: its connection inside the transaction, the time, its outbox,
    and the answer to send back when the message asked for one (`reply_to`)."""

    conn: Connection
    service: str
    cause: Envelope
    now: datetime
    outbox: list[tuple[str, Envelope]] = field(default_factory=list)
    reply: Contract | None = None
    # What a re-sent request gets instead of `reply`, when the answer must not be kept as sent
    # (it carries personal data): stored answers live in the database.
    kept_reply: Contract | None = None

    def emit(self, queue: str, payload: Contract, *, ticket_id: str | None) -> Envelope:
        """Queue a message for `queue`; it is published only if the transaction commits."""
        envelope = self.envelope(payload, ticket_id=ticket_id)
        self.outbox.append((queue, envelope))
        return envelope

    def envelope(self, payload: Contract, *, ticket_id: str | None) -> Envelope:
        return Envelope.wrap(
            payload,
            producer=self.service,
            correlation_id=ticket_id,
            causation_id=self.cause.message_id,
            sent_at=self.now,
        )


Handler = Callable[[Transaction, Incoming[Any]], Awaitable[Outcome]]


@dataclass(frozen=True)
class Route:
    """A message type a queue takes, and the handler its worker runs for it."""

    kind: MessageType
    handler: Handler


# Where a message may ask for its answer: a server-named queue (`amq.gen-…`, what the CLI
# declares) or aio-pika's own names for the queues it names (`amq_` and a uuid's hex), bound
# to `ticketq.replies`; never a service's queue, which would make a worker publish into
# another service's input. Not RabbitMQ's direct reply-to: it is reached only through the
# default exchange, which no worker may write to.
REPLY_TO = re.compile(r"^amq\.gen-[A-Za-z0-9_-]{1,200}$|^amq_[0-9a-f]{32}$")


def decode(
    body: bytes,
    accepted: Mapping[str, Route],
    *,
    content_type: str | None = CONTENT_TYPE,
    reply_to: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> tuple[Envelope, Contract]:
    """Envelope and typed payload, or InvalidMessage saying exactly what is wrong.

    Strict: the body is UTF-8 JSON within `shared.messaging.wire`'s limits and is validated in the
    published schema's terms (no "1" for 1, no number for a date or an amount); the message's
    content type, `reply_to` and headers (`shared.messaging.amqp_headers`) are checked too. Nothing
    else escapes.
    """
    if (unreadable := unreadable_headers(headers)) is not None:
        raise InvalidMessage(DeadLetterReason.INVALID_PROPERTIES, unreadable)
    if not is_json_content_type(content_type):
        raise InvalidMessage(
            DeadLetterReason.INVALID_PROPERTIES,
            f"content type {content_type!r}; messages are {CONTENT_TYPE}",
        )
    if reply_to is not None and not REPLY_TO.fullmatch(reply_to):
        raise InvalidMessage(
            DeadLetterReason.INVALID_PROPERTIES,
            "reply_to names no reply queue (amq.gen-* or amq_<hex>, bound to ticketq.replies)",
        )
    try:
        raw = read_json(body)
    except UnreadableJson as exc:
        raise InvalidMessage(DeadLetterReason.MALFORMED_JSON, str(exc)) from None
    context = {NUL_FREE: True} if b"\\u0000" not in body else None
    if (route := _route_of(raw, accepted)) is not None:
        # The usual case, a type this queue takes in the version it reads: envelope and payload
        # validated in one pass over the body.
        try:
            typed = _typed(route.kind.model).model_validate_json(body, strict=True, context=context)
        except ValidationError as exc:
            raise InvalidMessage(DeadLetterReason.INVALID_CONTRACT, _errors(exc)) from None
        fields = {name: getattr(typed, name) for name in Envelope.model_fields if name != "payload"}
        return Envelope.model_construct(**fields, payload=raw["payload"]), typed.payload
    try:
        envelope = Envelope.model_validate_json(body, strict=True, context=context)
    except ValidationError as exc:
        raise InvalidMessage(DeadLetterReason.INVALID_CONTRACT, _errors(exc)) from None
    route = accepted.get(envelope.type)
    if route is None:
        raise InvalidMessage(
            DeadLetterReason.UNKNOWN_TYPE, f"this queue takes no message of type {envelope.type!r}"
        )
    kind = route.kind
    if envelope.schema_version != kind.version:
        raise InvalidMessage(
            DeadLetterReason.UNSUPPORTED_VERSION,
            f"{envelope.type} v{envelope.schema_version}; this service reads v{kind.version}",
        )
    try:
        payload = kind.model.model_validate_json(
            json.dumps(raw["payload"]), strict=True, context=context
        )
    except ValidationError as exc:
        raise InvalidMessage(
            DeadLetterReason.INVALID_CONTRACT, _errors(exc, at="payload")
        ) from None
    return envelope, payload


def _route_of(raw: object, accepted: Mapping[str, Route]) -> Route | None:
    """The route of a body that names a type `accepted` in the version it reads, else None
    (`decode` then says what is wrong)."""
    if not isinstance(raw, dict) or not isinstance(name := raw.get("type"), str):
        return None
    route = accepted.get(name)
    version = raw.get("schema_version")
    if route is None or type(version) is not int or version != route.kind.version:
        return None
    return route


class _TypedEnvelope(Envelope, Generic[P]):
    payload: P  # type: ignore[assignment]  # the envelope's payload, typed by its message type


@functools.cache
def _typed(model: type[Contract]) -> type[_TypedEnvelope[Any]]:
    return _TypedEnvelope[model]  # type: ignore[valid-type]


def _attempt(message: AbstractIncomingMessage) -> int:
    """Which pass through the pipeline this is (`tq-attempt`, set by replays); 1 if unreadable."""
    value = (message.headers or {}).get(messaging.ATTEMPT, 1)
    return value if isinstance(value, int) and value >= 1 else 1


def _errors(exc: ValidationError, *, at: str = "") -> str:
    # Field locations and messages only: pydantic's default text echoes the input values.
    return "; ".join(
        f"{'.'.join(map(str, (at, *e['loc']) if at else e['loc'])) or '(root)'}: {e['msg']}"
        for e in exc.errors()
    )


def _outbox_rows(
    outbox: list[tuple[str, Envelope]],
) -> list[tuple[str, str, str, str, str | None, bytes]]:
    return [
        (
            e.message_id,
            messaging.EXCHANGE,
            queue,
            e.type,
            e.correlation_id,
            e.model_dump_json().encode(),
        )
        for queue, e in outbox
    ]


_OUTBOX_COLUMNS = ("message_id", "exchange", "routing_key", "type", "ticket_id", "body")


async def write_outbox(conn: Connection, outbox: list[tuple[str, Envelope]]) -> None:
    if outbox:
        await conn.executemany(
            f"INSERT INTO outbox ({', '.join(_OUTBOX_COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6)",
            _outbox_rows(outbox),
        )


class Worker:
    """Consumes one queue with the runtime above.

    While the database is away (its probe fails) the worker holds what it has and takes
    nothing more: it cancels its consumer (basic.cancel) and keeps the deliveries in hand
    unacked, neither acked nor rejected, so their delivery count is not used up (RabbitMQ 3.10
    quorum queues count every return towards the delivery limit, nack-requeue included, and
    later versions count a requeue too). When the probe answers again it consumes again and
    retries the held messages itself, in hand all along. A transient failure counts against
    the message only if the database answered all along: a message that fails for its own
    reasons is dead-lettered as before.

    Past the broker's consumer timeout (30 min by default) the broker closes the channel and
    requeues the held deliveries, at most one delivery counted each (with the default limit of
    20, some 9 hours of outage); the held handlers see their channel closed and let them go
    (handling them again would only meet the inbox). The robust channel reopens with no
    consumer, and the worker consumes again once the database is back.
    """

    def __init__(
        self,
        *,
        service: str,
        queue: str,
        routes: Mapping[str, Route],
        settings: Settings,
        pool: Pool,
        channel: AbstractChannel,
        database: Dependency,
        on_commit: Callable[[], None] = lambda: None,
        clock: Clock | None = None,
    ) -> None:
        self.service = service
        self.queue_name = queue
        self.routes = routes
        self.settings = settings
        self.pool = pool
        self.channel = channel
        self.database = database
        self.on_commit = on_commit  # wakes the outbox relay
        self.clock = clock or SystemClock()
        self._queue: AbstractQueue | None = None
        self._dlx: AbstractExchange | None = None
        self._replies: AbstractExchange | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()  # the database went or came back: consume or not
        self._steering: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.channel.set_qos(prefetch_count=self.settings.prefetch)
        self._dlx = await self.channel.get_exchange(messaging.DEAD_LETTER_EXCHANGE)
        self._replies = await self.channel.get_exchange(messaging.REPLY_EXCHANGE)
        self._queue = await self.channel.get_queue(self.queue_name)
        self._consumer_tag = await self._queue.consume(self.on_message)
        self.database.on_change(lambda _up: self._changed.set())
        self._steering = asyncio.create_task(self._steer(), name=f"{self.queue_name}-steering")
        log.info("consuming", queue=self.queue_name, prefetch=self.settings.prefetch)

    async def stop(self) -> None:
        """Stop taking deliveries and let those in hand finish (their acks still go out);
        messages held for the database are let go: the broker requeues them at close."""
        self._stopping.set()
        if self._steering is not None:
            self._steering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._steering
        if self._queue is not None and self._consumer_tag is not None:
            # A channel the broker already closed (an outage not yet over) has no consumer
            # left to cancel.
            with contextlib.suppress(AMQPError, ChannelInvalidStateError):
                await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=30)

    async def _steer(self) -> None:
        """Consume while the database answers, not while it is away."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._follow_database()
            except Exception:
                # The broker is away too: the robust connection restores only a consumer
                # that was running; try again shortly.
                log.debug("consumer_steering_failed", exc_info=True)
                self._changed.set()
                await asyncio.sleep(1.0)

    async def _follow_database(self) -> None:
        assert self._queue is not None
        if self.database.is_up and self._consumer_tag is None:
            self._consumer_tag = await self._queue.consume(self.on_message)
            log.info("consuming_resumed", queue=self.queue_name)
        elif not self.database.is_up and self._consumer_tag is not None:
            tag, self._consumer_tag = self._consumer_tag, None
            await self._queue.cancel(tag)
            log.info("consuming_paused", queue=self.queue_name, held=len(self._in_flight))

    async def _hold(self, message: AbstractIncomingMessage) -> bool:
        """Keep `message` unacked until the database is back; False to let it go instead
        (the worker stops, or the broker took it back: its channel closed)."""
        if not self.database.is_up:
            back = asyncio.ensure_future(self.database.wait_up())
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({back, stopping}, return_when=asyncio.FIRST_COMPLETED)
            back.cancel()
            stopping.cancel()
        return not self._stopping.is_set() and not message.channel.is_closed

    async def _blameless(self, outages: int) -> bool:
        """Whether the database was away since the tries began (`outages` then) or is now."""
        return not await self.database.check() or self.database.outages != outages

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._on_message(message)
        except Exception:
            if message.channel.is_closed:
                # The broker went away mid-way: it has the message back and redelivers it (the
                # inbox makes a second pass a no-op). The outage is logged once, elsewhere.
                log.debug("delivery_lost", message_id=message.message_id, exc_info=True)
                return
            # Dead-lettering or the reply failed: give the message back. A reject counts
            # towards the queue's delivery limit, so this cannot loop for ever.
            log.exception("delivery_failed", message_id=message.message_id)
            with contextlib.suppress(Exception):
                await message.reject(requeue=True)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        attempt = _attempt(message)
        # Each delivery runs in a task of its own (aiormq, then aio-pika, create one), whose
        # context is a copy: bound here, gone with the task. `bound_contextvars`, which also
        # undoes the binding, cost ~40 us a message (of ~10 for binding alone).
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id, type=message.type, ticket_id=message.correlation_id
        )
        try:
            envelope, payload = decode(
                message.body,
                self.routes,
                content_type=message.content_type,
                reply_to=message.reply_to,
                headers=message.headers,
            )
        except InvalidMessage as exc:
            await self._dead_letter(message, exc.reason, exc.error, attempt)
            self._record(started, "invalid", "dead_lettered", reason=exc.reason)
            return

        def handle() -> Awaitable[tuple[Outcome, bytes | None]]:
            return self._handle(envelope, payload, message.reply_to, credential_of(message.headers))

        tries = 0
        while True:
            if not await self._hold(message):
                return
            outages = self.database.outages
            try:
                try:
                    tries += 1
                    outcome, reply = await handle()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    # Tried again with backoff, bounded. The first try ran outside tenacity
                    # (whose bookkeeping was ~0.4 ms a message in the profile, for the rare
                    # retry), so its failure is fed in as tenacity's first attempt.
                    first_failure: Exception | None = exc
                    async for retry in AsyncRetrying(
                        stop=stop_after_attempt(self.settings.retry_attempts),
                        wait=wait_exponential_jitter(
                            multiplier=0.05, max=self.settings.retry_max_wait
                        ),
                        retry=retry_if_exception(is_transient),
                        reraise=True,
                    ):
                        with retry:
                            if first_failure is not None:
                                failed, first_failure = first_failure, None
                                raise failed from None  # the same exception, now as attempt 1
                            tries += 1
                            outcome, reply = await handle()
            except Exception as exc:
                if is_transient(exc) and await self._blameless(outages):
                    continue  # held until the database is back, then tried again
                reason = (
                    DeadLetterReason.RETRIES_EXHAUSTED
                    if is_transient(exc)
                    else DeadLetterReason.HANDLER_ERROR
                )
                log.warning("handling_failed", reason=reason, tries=tries, exc_info=True)
                await self._dead_letter(message, reason, f"{type(exc).__name__}: {exc}", attempt)
                self._record(started, envelope.type, "dead_lettered", reason=reason, tries=tries)
                return
            break
        failpoint("after_commit")
        if reply is not None and message.reply_to:
            assert self._replies is not None
            # Not mandatory: an asker who gave up waiting is no reason to fail the message.
            await self._replies.publish(
                amqp_message(Envelope.model_validate_json(reply), body=reply),
                routing_key=message.reply_to,
                mandatory=False,
            )
        await message.ack()
        self._record(
            started, envelope.type, outcome.label, ticket_id=outcome.ticket_id, tries=tries
        )

    async def _handle(
        self,
        envelope: Envelope,
        payload: Contract,
        reply_to: str | None,
        credential: str | None = None,
    ) -> tuple[Outcome, bytes | None]:
        """Inbox, handler, outbox and stored answer in one transaction: (outcome, answer)."""
        route = self.routes[envelope.type]
        scope = route.kind.inbox_scope(self.queue_name)
        # BEGIN with the inbox claim, COMMIT with the outbox and the stored answer: one round
        # trip each (shared.db.script).
        claim = script.insert("inbox", ("consumer", "message_id"), [(scope, envelope.message_id)])
        async with (
            self.pool.acquire() as conn,
            script.transaction(conn, f"{claim} ON CONFLICT DO NOTHING") as (claimed, closing),
        ):
            if claimed != "INSERT 0 1":
                # A re-sent command gets the answer the first one got.
                earlier: bytes | None = None
                if reply_to:
                    earlier = await conn.fetchval(
                        "SELECT body FROM replies WHERE consumer = $1 AND message_id = $2",
                        scope,
                        envelope.message_id,
                    )
                return Outcome("duplicate_message", envelope.correlation_id), earlier
            tx = Transaction(conn=conn, service=self.service, cause=envelope, now=self.clock.now())
            outcome = await route.handler(tx, Incoming(envelope, payload, credential))
            if tx.outbox:
                closing.append(script.insert("outbox", _OUTBOX_COLUMNS, _outbox_rows(tx.outbox)))
            answer: bytes | None = None
            if tx.reply is not None and reply_to:
                reply = tx.envelope(tx.reply, ticket_id=envelope.correlation_id)
                answer = reply.model_dump_json().encode()
                kept = answer
                if tx.kept_reply is not None:
                    kept = (
                        reply.model_copy(update={"payload": tx.kept_reply.model_dump(mode="json")})
                        .model_dump_json()
                        .encode()
                    )
                closing.append(
                    script.insert(
                        "replies",
                        ("consumer", "message_id", "body"),
                        [(scope, envelope.message_id, kept)],
                    )
                )
            failpoint("before_commit")
        if tx.outbox:
            self.on_commit()
        return outcome, answer

    async def _dead_letter(
        self, message: AbstractIncomingMessage, reason: DeadLetterReason, error: str, attempt: int
    ) -> None:
        """Publish a copy with the reason to the dead-letter queue (confirmed), then ack."""
        assert self._dlx is not None
        headers = {
            **(message.headers or {}),
            **messaging.dead_letter_headers(
                reason=reason,
                error=error,
                queue=self.queue_name,
                attempts=attempt,
                service=self.service,
            ),
        }
        copy = messaging.copy_message(message, headers=headers)
        await self._dlx.publish(copy, routing_key=self.queue_name)
        await message.ack()

    @property
    def is_consuming(self) -> bool:
        return self._consumer_tag is not None

    def _record(
        self,
        started: float,
        message_type: str,
        outcome: str,
        *,
        tries: int = 1,
        reason: DeadLetterReason | None = None,
        ticket_id: str | None = None,
    ) -> None:
        """The one log line and the metrics of a handled message."""
        seconds = time.perf_counter() - started
        record_handled(self.queue_name, message_type, outcome, seconds, tries, reason)
        log.info(
            "message_handled",
            queue=self.queue_name,
            outcome=outcome,
            duration_ms=round(seconds * 1000, 2),
            tries=tries,
            reason=reason,
            ticket_id=ticket_id,
        )
