"""Dead-lettered messages: read, group, replay and discard them over AMQP alone (SPEC §9).

No management plugin: counts come from passive declares, messages are read with manual-ack
deliveries that are never acked, and every replay and discard is written to `dlq_audit`.

How a dead-letter queue is read without losing or reordering anything
--------------------------------------------------------------------
A quorum queue gives a message that was delivered and not acked back when the channel closes,
with no loss. Where it puts it back is the subtle part: returned messages join a "returns"
list that is delivered before the rest of the queue, each one appended at the END of that list
(seen on RabbitMQ 3.10: read two messages of six after an earlier read had returned all six,
close the channel, and those two come back after the other four). `basic.reject`/`nack` with
requeue are worse: on 3.13+ they go to the back of the queue when there is no delivery limit,
and on 4.x `reject` counts towards the delivery limit. So:

* every command takes ALL the messages a DLQ holds when it starts (the passive-declare count),
  on one channel of its own with a prefetch of that count, and never rejects or nacks;
* selected messages are acked (after their replayed copy is confirmed, for a replay);
* the channel is closed: the broker returns every message not acked, in the order they were
  delivered, which is the queue order. Taking a prefix of the queue would be unsafe: if the
  returns list is longer than the prefix, the prefix ends up behind the rest of it;
* the command waits until the returned messages show in the count again: the quorum queue
  takes them back a moment after the channel is closed, and the next read must see them.

Messages dead-lettered while a command runs are behind the counted ones and stay untouched.
Two commands reading the same DLQ at once would interleave their returns, so each command
holds a lock first: an exclusive queue (`LOCK_QUEUE`), which the broker frees when the
connection ends, crash included.

A crash (SIGKILL) anywhere loses nothing: a dead-lettered copy is acked only after its replayed
copy has been confirmed by the broker, and the connection's death returns every message not
acked. A message can then be both replayed and still dead-lettered; both copies keep its message
id, so a second replay is a no-op in the consumer's inbox.

Each read counts as one delivery of every message in the DLQ (`x-delivery-count`); the DLQs
are declared with a delivery limit no inspection reaches (`messaging.DEAD_LETTER_QUEUE_ARGUMENTS`;
RabbitMQ 4.x would otherwise drop a message read more than 20 times). A test reads one 25 times.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from shared.config import Settings
from shared.failpoints import failpoint
from shared.messaging import amqp, amqp_headers
from shared.messaging import topology as messaging
from shared.ops.dlq.audit import Audit
from shared.ops.dlq.letters import (
    NO_TYPE,
    AuditUnavailable,
    Busy,
    DeadLetter,
    DeadLetterError,
    Filter,
    Group,
    Outcome,
    QueueSummary,
    Unreachable,
    dead_letter_queue,
    dead_letter_queues,
    replay_headers,
)

# An exclusive queue as a lock between concurrent `ticketq dlq` commands: freed by the broker
# when the holding connection closes or dies.
LOCK_QUEUE = "ticketq.dlq-tool.lock"
# Replayed copies published, confirmed, recorded and acked per round.
BATCH = 100
# Reads of a DLQ to take again copies whose acks the broker dropped (`DeadLetters._verified`).
REPAIR_ROUNDS = 5
# AMQP's prefetch count is 16 bits; a larger DLQ is read with basic.get, one round trip each.
MAX_PREFETCH = 65_535


# --------------------------------------------------------------------------- the broker side


class _Held:
    """The messages of one DLQ, delivered to a channel of their own and not acked."""

    def __init__(self, owner: DeadLetters, channel: AbstractChannel, dlq: str, count: int) -> None:
        self.owner = owner
        self.channel = channel
        self.dlq = dlq
        self.count = count
        self.read = 0  # delivered to us and parsed
        self.acked = 0  # of those, acked (replayed or discarded)
        self.ready_after: int | None = None  # the DLQ's count once the channel has let go
        self._unacked: dict[int, None] = {}  # delivery tags read and not acked, in order

    async def ack(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Ack these deliveries: with ONE `multiple` ack when they are the oldest not yet acked
        (a whole replay, a run of selected messages), else one by one.

        Why it matters: RabbitMQ 3.10's quorum queue client holds back settles past 32 pending
        commands and drops those it holds if the channel closes (`_verified` repairs that);
        one ack for a batch is one command.
        """
        if not messages:
            return
        tags = [m.delivery_tag for m in messages]
        oldest = list(itertools.islice(self._unacked, len(tags)))
        if sorted(t for t in tags if t is not None) == oldest:
            await messages[tags.index(max(oldest))].ack(multiple=True)
        else:
            for message in messages:
                await message.ack()
        for tag in tags:
            if tag is not None:
                self._unacked.pop(tag, None)
        self.acked += len(messages)

    async def messages(self) -> AsyncGenerator[tuple[AbstractIncomingMessage, DeadLetter], None]:
        """The `count` messages at the head of the DLQ, in queue order."""
        if self.count == 0:
            return
        queue = await self.channel.get_queue(self.dlq, ensure=False)
        timeout = self.owner.delivery_timeout
        if self.count <= MAX_PREFETCH:
            arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

            async def on_message(message: AbstractIncomingMessage) -> None:
                arrived.put_nowait(message)

            # A prefetch of exactly the count: the broker delivers the counted messages and,
            # until something is acked, nothing that arrives later.
            await self.channel.set_qos(prefetch_count=self.count)
            await queue.consume(on_message, no_ack=False)
            for position in range(self.count):
                try:
                    message = await asyncio.wait_for(arrived.get(), timeout)
                except TimeoutError:
                    break  # fewer than counted: another consumer or an expiry took some
                yield message, self._parse(position, message)
        else:
            for position in range(self.count):
                got = await queue.get(no_ack=False, fail=False, timeout=timeout)
                if got is None:
                    break
                yield got, self._parse(position, got)

    def _parse(self, position: int, message: AbstractIncomingMessage) -> DeadLetter:
        self.read += 1
        if message.delivery_tag is not None:
            self._unacked[message.delivery_tag] = None
        return DeadLetter.from_message(self.dlq, position, message)


class DeadLetters:
    """A session over the dead-letter queues: one broker connection holding the tool's lock.

    async with DeadLetters.connect(settings) as dlq:
        for summary in await dlq.summaries():
            ...
    """

    def __init__(self, connection: AbstractConnection, *, delivery_timeout: float = 5.0) -> None:
        self.connection = connection
        self.delivery_timeout = delivery_timeout
        self.warnings: list[str] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, settings: Settings, *, lock_wait: float = 10.0, delivery_timeout: float = 5.0
    ) -> AsyncIterator[DeadLetters]:
        # A plain connection, not a robust one: after a reconnect the held deliveries are gone
        # (the broker returned them) and acking their stale tags would be wrong.
        amqp_headers.install()  # a dead letter's headers may be anything the broker took
        try:
            connection = await amqp.connect(settings.amqp_url, name="ticketq-dlq")
        except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
            raise Unreachable(f"cannot connect to RabbitMQ: {exc}") from exc
        try:
            await _acquire_lock(connection, lock_wait)
            yield cls(connection, delivery_timeout=delivery_timeout)
        finally:
            await connection.close()

    # ---- reading

    async def counts(self, queues: Iterable[str] | None = None) -> dict[str, int]:
        """Messages ready in each DLQ, by passive declare (nothing is delivered)."""
        channel = await self.connection.channel(publisher_confirms=False)
        try:
            return {dlq: (await _stats(channel, dlq))[0] for dlq in dead_letter_queues(queues)}
        finally:
            if not channel.is_closed:
                await channel.close()

    async def read(self, dlq: str) -> list[DeadLetter]:
        """Every message of one DLQ, in order, left where it is."""
        async with self._holding(dead_letter_queue(dlq)) as held:
            return [dead async for _, dead in held.messages()]

    async def read_all(self, queues: Iterable[str] | None = None) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for dlq in dead_letter_queues(queues):
            found.extend(await self.read(dlq))
        return found

    async def summaries(
        self, queues: Iterable[str] | None = None, *, scan: bool = True
    ) -> list[QueueSummary]:
        """Count, oldest and newest dead-letter time of each DLQ (`scan=False`: counts only)."""
        result = []
        for dlq, count in (await self.counts(queues)).items():
            times = (
                [d.dead_lettered_at for d in await self.read(dlq) if d.dead_lettered_at]
                if scan and count
                else []
            )
            result.append(
                QueueSummary(
                    dlq, count, min(times) if times else None, max(times) if times else None
                )
            )
        return result

    async def peek(self, queue: str, n: int = 20) -> list[DeadLetter]:
        """The first `n` messages of a DLQ. All of it is read: see the module's docstring."""
        return (await self.read(queue))[:n]

    async def find(self, message_id: str, queues: Iterable[str] | None = None) -> list[DeadLetter]:
        """Every dead-lettered copy of a message id (a replayed message may have two)."""
        return [d for d in await self.read_all(queues) if d.message_id == message_id]

    async def group(self, queues: Iterable[str] | None = None) -> list[Group]:
        """Counts by DLQ, reason and message type, largest first within each DLQ."""
        counted = Counter((d.dlq, d.reason, d.type or NO_TYPE) for d in await self.read_all(queues))
        order = {q: i for i, q in enumerate(dead_letter_queues())}
        return [
            Group(dlq, reason, type_, n)
            for (dlq, reason, type_), n in sorted(
                counted.items(), key=lambda kv: (order[kv[0][0]], -kv[1], kv[0][1], kv[0][2])
            )
        ]

    async def select(self, selection: Filter) -> list[DeadLetter]:
        """What a replay or discard with this filter would take; moves nothing."""
        return [
            d for d in await self.read_all(selection.dead_letter_queues()) if selection.matches(d)
        ]

    # ---- moving

    async def replay(
        self, selection: Filter, *, audit: Audit | None, actor: str, dry_run: bool = False
    ) -> Outcome:
        """Publish each selected message back to its queue (same message id, `tq-attempt` + 1),
        with confirms, and only then ack its dead-lettered copy."""
        return await self._move("replay", selection, audit=audit, actor=actor, dry_run=dry_run)

    async def discard(
        self,
        selection: Filter,
        *,
        audit: Audit | None,
        actor: str,
        dry_run: bool = False,
        only: Iterable[str] | None = None,
    ) -> Outcome:
        """Ack (drop) each selected message, its id recorded in the audit log first.

        `only`: message ids the operator confirmed after a preview; messages dead-lettered
        since then are left alone even when they match the filter.
        """
        return await self._move(
            "discard", selection, audit=audit, actor=actor, dry_run=dry_run, only=only
        )

    async def _move(
        self,
        action: str,
        selection: Filter,
        *,
        audit: Audit | None,
        actor: str,
        dry_run: bool,
        only: Iterable[str] | None = None,
    ) -> Outcome:
        outcome = Outcome(
            action=action,
            selection=selection,
            dry_run=dry_run,
            only=frozenset(only) if only is not None else None,
        )
        if dry_run:
            found = await self.read_all(selection.dead_letter_queues())
            outcome.matched = [d for d in found if outcome.selects(d)]
            return outcome
        if audit is None:
            raise AuditUnavailable(f"a {action} needs the audit log")
        outcome.audit_id = await audit.start(action, actor, selection)
        # This run holds the lock: a row still `started` is a run that died or lost its way.
        outcome.interrupted = await audit.close_interrupted(outcome.audit_id)
        try:
            await self._apply(outcome, audit)
        except Exception as exc:  # reported in the outcome and in the audit row
            outcome.error = f"{type(exc).__name__}: {exc}"
        try:
            await audit.finish(outcome)
        except Exception as exc:
            closing = f"audit row {outcome.audit_id} left 'started': {type(exc).__name__}: {exc}"
            outcome.error = f"{outcome.error}; {closing}" if outcome.error else closing
        return outcome

    async def _apply(self, outcome: Outcome, audit: Audit) -> None:
        publisher: AbstractChannel | None = None
        if outcome.action == "replay":
            publisher = await self.connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
        try:
            for dlq in outcome.selection.dead_letter_queues():
                async with (
                    self._holding(dlq) as held,
                    contextlib.aclosing(held.messages()) as messages,
                ):
                    batch: list[tuple[AbstractIncomingMessage, DeadLetter]] = []
                    async for message, dead in messages:
                        if not outcome.selects(dead):
                            continue
                        outcome.matched.append(dead)
                        batch.append((message, dead))
                        if len(batch) >= BATCH:
                            await self._flush(outcome, held, batch, audit, publisher)
                            batch = []
                            if outcome.failed:
                                break
                    if batch and not outcome.failed:
                        await self._flush(outcome, held, batch, audit, publisher)
                # Leaving the block closes the channel: the broker takes the acks, then returns
                # every message not acked, in order.
                await self._verified(held, [d for d in outcome.done if d.dlq == dlq])
                if outcome.failed:
                    return
        finally:
            if publisher is not None and not publisher.is_closed:
                await publisher.close()

    async def _flush(
        self,
        outcome: Outcome,
        held: _Held,
        batch: list[tuple[AbstractIncomingMessage, DeadLetter]],
        audit: Audit,
        publisher: AbstractChannel | None,
    ) -> None:
        """Publish (replay) and ack a batch."""
        assert outcome.audit_id is not None
        if publisher is not None:
            exchange = await publisher.get_exchange(messaging.EXCHANGE, ensure=False)
            results = await asyncio.gather(
                *(
                    exchange.publish(
                        messaging.copy_message(
                            message, headers=replay_headers(dead, audit_id=outcome.audit_id)
                        ),
                        routing_key=dead.replay_queue,
                        mandatory=True,
                        timeout=30,
                    )
                    for message, dead in batch
                ),
                return_exceptions=True,
            )
            confirmed = []
            for (message, dead), result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    outcome.failed.append(dead)
                    outcome.error = outcome.error or (
                        f"the broker refused the replay of {dead.message_id}: "
                        f"{type(result).__name__}: {result}"
                    )
                else:
                    confirmed.append((message, dead))
        else:
            confirmed = batch
        if not confirmed:
            return
        # Recorded before the acks: a crash now leaves messages both replayed and still
        # dead-lettered (harmless), never gone without a trace.
        await audit.progress(outcome.audit_id, [dead.message_id or "" for _, dead in confirmed])
        step = "publish" if publisher else "record"
        for n in range(len(outcome.done) + 1, len(outcome.done) + len(confirmed) + 1):
            failpoint(f"dlq_after_{step}")
            failpoint(f"dlq_after_{step}:{n}")
        await held.ack([message for message, _ in confirmed])
        outcome.done.extend(dead for _, dead in confirmed)

    async def _verified(self, held: _Held, done: Sequence[DeadLetter]) -> None:
        """Make sure what was acked is gone from the DLQ once the channel has let go.

        RabbitMQ 3.10's quorum queue client holds back settles (acks) while more than 32 of
        its commands are pending and DROPS those it holds when the channel closes: the broker
        then returns those messages to the DLQ although they were replayed (or discarded) and
        recorded. One ack per batch (`_Held.ack`) makes that rare; this makes it harmless:
        when the DLQ holds more than the messages left alone, it is read again and the copies
        acked before (same id, body and headers; a copy dead-lettered again after its replay
        differs) are acked again.
        """
        acked = Counter(d.identity for d in done)
        for round_ in range(REPAIR_ROUNDS + 1):
            if held.ready_after is None or held.ready_after <= held.count - held.acked:
                return
            if round_ == REPAIR_ROUNDS:
                break
            async with (
                self._holding(held.dlq) as held,
                contextlib.aclosing(held.messages()) as messages,
            ):
                back = []
                # Each round afresh: an ack of the round before may have been dropped too.
                remaining = acked.copy()
                async for message, dead in messages:
                    if remaining[dead.identity] > 0:
                        remaining[dead.identity] -= 1
                        back.append(message)
                await held.ack(back)
        self._warn(held.dlq, f"{held.dlq}: acked messages came back; run the command again")

    # ---- internals

    @contextlib.asynccontextmanager
    async def _holding(self, dlq: str) -> AsyncIterator[_Held]:
        channel = await self.connection.channel(publisher_confirms=False)
        held: _Held | None = None
        try:
            count, consumers = await _stats(channel, dlq)
            if consumers:
                self._warn(dlq, f"{dlq}: {consumers} other consumer(s) hold messages of it")
            held = _Held(self, channel, dlq, count)
            yield held
        finally:
            if not channel.is_closed:
                await channel.close()
            if held is not None and held.read:
                held.ready_after = await self._settled(dlq, held.read - held.acked, consumers)

    async def _settled(self, dlq: str, returned: int, consumers: int) -> int:
        """Wait until the closed channel has let go of the DLQ; its count then.

        A quorum queue returns the messages a moment AFTER the channel is closed: a count taken
        at once (the next read, the next command) would miss them. Our consumer leaves the
        queue's consumer count in the same step, so both are awaited.
        """
        channel = await self.connection.channel(publisher_confirms=False)
        try:
            deadline = time.monotonic() + self.delivery_timeout
            while True:
                ready, now_consuming = await messaging.queue_stats(channel, dlq)
                if ready >= returned and now_consuming <= consumers:
                    return ready
                if time.monotonic() > deadline:
                    self._warn(dlq, f"{dlq}: fewer messages back than were read; read it again")
                    return ready
                await asyncio.sleep(0.01)
        finally:
            await channel.close()

    def _warn(self, dlq: str, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)


async def _stats(channel: AbstractChannel, dlq: str) -> tuple[int, int]:
    try:
        return await messaging.queue_stats(channel, dlq)
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise DeadLetterError(
            f"{dlq} does not exist: no worker has declared the topology on this vhost yet"
        ) from None


async def _acquire_lock(connection: AbstractConnection, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        channel = await connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(
                LOCK_QUEUE,
                durable=False,
                exclusive=True,
                arguments={"x-queue-type": "classic"},
            )
        except aiormq.exceptions.ChannelLockedResource:
            if time.monotonic() >= deadline:
                raise Busy(
                    f"another `ticketq dlq` command is running (it holds {LOCK_QUEUE!r}); "
                    "try again when it has finished"
                ) from None
            await asyncio.sleep(0.2)
            continue
        except aiormq.exceptions.ChannelAccessRefused as exc:
            raise DeadLetterError(
                f"this RabbitMQ user may not declare the lock queue {LOCK_QUEUE!r} "
                f"(needs configure permission on it): {exc}"
            ) from exc
        await channel.close()
        return
