"""The outbox relay: publishes committed outbox rows with confirms, then deletes them.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so every replica can run a relay. A crash
between the broker's confirm and the delete publishes those rows again on restart: the
receivers' inboxes drop the copies (same message id). Nothing uncommitted is ever seen here.

Each row of a round is published on its own (mandatory, confirmed) and all at once, confirms
awaited together; each row then gets its own verdict (`verdict`): the confirmed ones are
deleted whatever happened to the others, a row the broker can never deliver (no queue for
its routing key, or no such exchange: looked up first, as a missing one closes the channel and
fails every publish in flight on it) is set aside in `outbox_set_aside` with the reason, and a
row the broker refused (nack: e.g. its queue is full) is tried again later, with backoff. Claims
take the rows due first (`due_at`), so a row that keeps failing never starves those behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import aio_pika
import aiormq
import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange

from shared.config import Settings
from shared.db import Connection, Pool
from shared.dependencies import Dependency, Episode
from shared.failpoints import failpoint
from shared.messaging.topology import PUBLISH_TIMEOUT
from shared.observability import OUTBOX_SET_ASIDE

log = structlog.get_logger(__name__)

_HOUSEKEEPING_EVERY = 3600.0  # seconds between inbox retention sweeps
_RETRY_CAP = 10.0  # seconds, the longest wait before a refused row is tried again


class Fate(StrEnum):
    SENT = "sent"  # confirmed: delete it
    SET_ASIDE = "set_aside"  # the broker can never deliver it: move it out of the way
    RETRY = "retry"  # refused this time: try again later, with backoff
    UNSENT = "unsent"  # the broker or the channel went away: untouched, the round fails


@dataclass(frozen=True)
class Verdict:
    fate: Fate
    reason: str = ""


def verdict(result: object) -> Verdict:
    """What to do with a row, given what its publish returned or raised."""
    if not isinstance(result, BaseException):
        return Verdict(Fate.SENT)
    if isinstance(result, aiormq.exceptions.PublishError) and isinstance(
        result.frame, aiormq.spec.Basic.Return
    ):
        frame = result.frame
        return Verdict(
            Fate.SET_ASIDE,
            f"returned {frame.reply_code} {frame.reply_text}: no queue for routing key"
            f" {frame.routing_key!r} on exchange {frame.exchange!r}",
        )
    if isinstance(result, aiormq.exceptions.DeliveryError):
        return Verdict(Fate.RETRY, f"refused by the broker: {type(result.frame).__name__}")
    return Verdict(Fate.UNSENT, f"{type(result).__name__}: {result}")


async def _uncut(round_: Awaitable[int]) -> int:
    """A relay round run to its end even when the relay is cancelled meanwhile (a worker that
    stops): cut between the broker's confirms and the delete, it would leave its rows to be
    published a second time. The cancellation takes effect after the round."""
    task = asyncio.ensure_future(round_)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


class OutboxRelay:
    def __init__(
        self,
        *,
        pool: Pool,
        channel: AbstractChannel,
        settings: Settings,
        database: Dependency,
        broker: Dependency,
    ) -> None:
        self.pool = pool
        self.channel = channel
        self.settings = settings
        self.database = database
        self.broker = broker
        self._wakeup = asyncio.Event()
        self._exchanges: dict[str, AbstractExchange] = {}
        self._last_housekeeping = 0.0
        self._failing = Episode("outbox_relay_failing")
        self._waiting = False  # for the database or the broker

    @property
    def running(self) -> bool:
        """False while its rounds fail (for /readyz)."""
        return not (self._failing.ongoing or self._waiting)

    def notify(self) -> None:
        """Something was committed to the outbox: publish it now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            self._wakeup.clear()
            try:
                claimed = await _uncut(self.publish_batch())
                await self._housekeeping()
            except Exception as exc:
                backoff = await self._failed(exc, backoff)
                continue
            backoff = 0.1
            self._failing.ended()
            if claimed < self.settings.relay_batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.settings.relay_idle_poll)

    async def _failed(self, exc: Exception, backoff: float) -> float:
        """A round failed: wait for the database and the broker if either is away (their
        outage is logged once by them), else log the relay's own failure once and back off."""
        databases_up, brokers_up = await asyncio.gather(self.database.check(), self.broker.check())
        if not (databases_up and brokers_up):
            self._waiting = True
            try:
                await self.database.wait_up()
                await self.broker.wait_up()
            finally:
                self._waiting = False
            return 0.1
        self._failing.failed(exc, traceback=True)
        await asyncio.sleep(backoff)
        return min(backoff * 2, 5.0)

    async def publish_batch(self) -> int:
        """One round; returns how many rows it claimed. Raises (after keeping what it could)
        if the broker or the channel failed some rows."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, message_id, exchange, routing_key, type, ticket_id, body, headers
                   FROM outbox WHERE due_at <= now() ORDER BY due_at, id
                   LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self.settings.relay_batch,
            )
            if not rows:
                return 0
            if missing := await self._missing_exchanges({row["exchange"] for row in rows}):
                # The failed declare closed the channel: set those rows aside now, and leave
                # the others untouched for the next round, on the channel reopened.
                aside = [row for row in rows if row["exchange"] in missing]
                await self._settle(
                    conn, aside, [Verdict(Fate.SET_ASIDE, missing[r["exchange"]]) for r in aside]
                )
                return len(rows)
            channel = await self.channel.get_underlay_channel()
            results = await asyncio.gather(
                *(self._publish(channel, row) for row in rows), return_exceptions=True
            )
            failpoint("relay_after_publish")
            verdicts = [verdict(r) for r in results]
            await self._settle(conn, rows, verdicts)
        unsent = [r for r, v in zip(results, verdicts, strict=True) if v.fate is Fate.UNSENT]
        if any(isinstance(r, aiormq.exceptions.ChannelNotFoundEntity) for r in unsent):
            self._exchanges.clear()  # one was deleted meanwhile: look them up again
        if unsent:
            assert isinstance(unsent[0], BaseException)
            raise unsent[0]
        return len(rows)

    @staticmethod
    async def _publish(channel: aiormq.abc.AbstractChannel, row: asyncpg.Record) -> None:
        # Straight to aiormq, which aio-pika's Exchange.publish calls: building aio-pika's
        # Message first cost about a fifth of the relay's time per row in the profile.
        await channel.basic_publish(
            row["body"],
            exchange=row["exchange"],
            routing_key=row["routing_key"],
            properties=aiormq.spec.Basic.Properties(
                message_id=row["message_id"],
                message_type=row["type"],
                correlation_id=row["ticket_id"],
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
                headers=row["headers"] or {},
            ),
            mandatory=True,
            timeout=PUBLISH_TIMEOUT,  # not confirmed by then: the round fails, the row stays
        )

    async def _settle(
        self, conn: Connection, rows: Sequence[asyncpg.Record], verdicts: Sequence[Verdict]
    ) -> None:
        """Delete the sent rows, set aside the undeliverable, postpone the refused."""
        by_fate: dict[Fate, list[tuple[int, str]]] = {fate: [] for fate in Fate}
        for row, v in zip(rows, verdicts, strict=True):
            by_fate[v.fate].append((row["id"], v.reason))
        if by_fate[Fate.SENT]:
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])",
                [i for i, _ in by_fate[Fate.SENT]],
            )
        if set_aside := by_fate[Fate.SET_ASIDE]:
            await conn.execute(
                """WITH moved AS (DELETE FROM outbox WHERE id = ANY($1::bigint[]) RETURNING *)
                   INSERT INTO outbox_set_aside (id, message_id, exchange, routing_key, type,
                       ticket_id, body, headers, created_at, reason)
                   SELECT m.id, m.message_id, m.exchange, m.routing_key, m.type, m.ticket_id,
                          m.body, m.headers, m.created_at, r.reason
                   FROM moved m JOIN unnest($1::bigint[], $2::text[]) AS r (id, reason)
                        USING (id)""",
                [i for i, _ in set_aside],
                [reason for _, reason in set_aside],
            )
            for row, v in zip(rows, verdicts, strict=True):
                if v.fate is Fate.SET_ASIDE:
                    log.warning(
                        "outbox_row_set_aside",
                        message_id=row["message_id"],
                        routing_key=row["routing_key"],
                        reason=v.reason,
                    )
            OUTBOX_SET_ASIDE.inc(len(set_aside))
        if retry := by_fate[Fate.RETRY]:
            await conn.execute(
                """UPDATE outbox SET attempts = attempts + 1, last_error = r.reason,
                       due_at = now() + make_interval(secs => least(2 ^ attempts, $3))
                   FROM unnest($1::bigint[], $2::text[]) AS r (id, reason)
                   WHERE outbox.id = r.id""",
                [i for i, _ in retry],
                [reason for _, reason in retry],
                _RETRY_CAP,
            )

    async def _missing_exchanges(self, names: set[str]) -> dict[str, str]:
        """The first of `names` that does not exist, with the reason ({} if all do)."""
        for name in sorted(names - set(self._exchanges)):
            try:
                self._exchanges[name] = await self.channel.get_exchange(name)
            except aiormq.exceptions.ChannelNotFoundEntity as exc:
                return {name: f"no exchange {name!r}: {exc}"}
        return {}

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_housekeeping < _HOUSEKEEPING_EVERY:
            return
        self._last_housekeeping = now
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM inbox WHERE received_at < now() - make_interval(days => $1)",
                self.settings.inbox_retention_days,
            )
        log.info("inbox_pruned", result=status)
