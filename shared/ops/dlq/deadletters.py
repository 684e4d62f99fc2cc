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
import codecs
import contextlib
import itertools
import json
import os
import re
import socket
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import aio_pika
import aiormq
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from services.catalogue import CATALOGUE
from shared.config import Settings
from shared.failpoints import failpoint
from shared.messaging import amqp_headers
from shared.messaging import topology as messaging
from shared.messaging.wire import UnreadableJson, read_json
from shared.pii import mask, mask_text

# An exclusive queue as a lock between concurrent `ticketq dlq` commands: freed by the broker
# when the holding connection closes or dies.
LOCK_QUEUE = "ticketq.dlq-tool.lock"
# Replayed copies published, confirmed, recorded and acked per round.
BATCH = 100
# Reads of a DLQ to take again copies whose acks the broker dropped (`DeadLetters._verified`).
REPAIR_ROUNDS = 5
# AMQP's prefetch count is 16 bits; a larger DLQ is read with basic.get, one round trip each.
MAX_PREFETCH = 65_535
NO_TYPE = "(none)"

ACTIONS = ("replay", "discard")
INTERRUPTED = "interrupted:"  # how the error of a run closed by a later one starts


class DeadLetterError(Exception):
    """An operation could not run; the message is for the operator."""


class Unreachable(DeadLetterError):
    """The broker or the database cannot be reached."""


class Busy(DeadLetterError):
    """Another `ticketq dlq` command holds the lock."""


class AuditUnavailable(DeadLetterError):
    """The audit table cannot be written: nothing is replayed or discarded without it."""


class AuditUnreachable(AuditUnavailable, Unreachable):
    """PostgreSQL, which holds the audit table, cannot be reached."""


# --------------------------------------------------------------------------- queue names


def dead_letter_queue(queue: str) -> str:
    """`intake` or `intake.dlq` → `intake.dlq`; ValueError for anything else."""
    base = source_queue(queue)
    if base not in CATALOGUE.queue_names:
        raise ValueError(
            f"unknown queue {queue!r}; one of {', '.join(CATALOGUE.queue_names)} (or <queue>.dlq)"
        )
    return messaging.dead_letter_queue(base)


def source_queue(queue: str) -> str:
    return queue.removesuffix(".dlq")


def dead_letter_queues(queues: Iterable[str] | None = None) -> list[str]:
    """The DLQs named (all of them when none), in topology order, without duplicates."""
    wanted = {dead_letter_queue(q) for q in queues or ()}
    every = [messaging.dead_letter_queue(q) for q in CATALOGUE.queue_names]
    return [q for q in every if not wanted or q in wanted]


# --------------------------------------------------------------------------- times


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or time (UTC when no offset is given), or a span ago: `90m`, `2h`, `7d`."""
    text = text.strip()
    if match := _RELATIVE.match(text):
        span = timedelta(**{_UNITS[match[2]]: int(match[1])})
        return (now or datetime.now(UTC)) - span
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (ISO 8601 like 2026-11-23T10:00+08:00, or 30m, 2h, 7d ago)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str | bytes):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _as_int(value: object, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str | bytes | Decimal | float):
        with contextlib.suppress(ValueError, ArithmeticError):
            return int(value)
    return default


def _as_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    return str(value)


# --------------------------------------------------------------------------- JSON


def jsonable(value: Any) -> Any:
    """A JSON-encodable copy of an AMQP header value (times as ISO text, bytes as text)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    if isinstance(value, Decimal):
        return str(value)
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_UNPARSABLE = object()


def _parse_body(body: bytes) -> Any:
    """The body as JSON, or `_UNPARSABLE`: whatever the broker holds (deep nesting, huge
    integers, bad UTF-8) is shown as raw text, never raised."""
    try:
        return read_json(body)
    except UnreadableJson:
        return _UNPARSABLE


def _raw_text(body: bytes) -> str:
    """A body that is not our JSON as text: UTF-16 or -32 when it starts with their byte order
    mark (so that it can be read, and masked), else UTF-8, bad bytes replaced."""
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom) and len(body) > len(bom):
            return body.decode(codec, errors="replace")
    return body.decode("utf-8-sig", errors="replace")


# --------------------------------------------------------------------------- a dead letter


@dataclass(frozen=True)
class DeadLetter:
    """One message in a DLQ, as dead-lettered by our worker (`tq-dl-*` headers) or by the
    broker itself (`x-death`: `delivery_limit`, `rejected`, `expired`, `maxlen`)."""

    dlq: str
    position: int  # 0 = the head of the DLQ when it was read
    message_id: str | None
    type: str | None
    reason: str
    error: str | None
    queue: str  # the queue it was dead-lettered from: where a replay sends it
    attempts: int  # passes through the pipeline so far (1, more after replays)
    dead_lettered_at: datetime | None
    service: str | None
    origin: str  # "worker", "broker" or "unknown"
    delivery_count: int  # deliveries from the DLQ itself (each read counts one)
    correlation_id: str | None
    headers: Mapping[str, Any] = field(repr=False)
    body: bytes = field(repr=False)

    @classmethod
    def from_parts(
        cls,
        dlq: str,
        position: int,
        *,
        body: bytes,
        headers: Mapping[str, Any] | None,
        message_id: str | None = None,
        type: str | None = None,
        correlation_id: str | None = None,
    ) -> DeadLetter:
        h = dict(headers or {})
        base = source_queue(dlq)
        deaths = h.get("x-death")
        death = (
            deaths[0]
            if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping)
            else None
        )
        parsed = _parse_body(body)
        if not type and isinstance(parsed, Mapping) and isinstance(parsed.get("type"), str):
            type = parsed["type"]
        if messaging.DL_REASON in h:
            origin = "worker"
            reason = _as_str(h[messaging.DL_REASON]) or "unknown"
            error = _as_str(h.get(messaging.DL_ERROR))
            queue = _as_str(h.get(messaging.DL_QUEUE)) or base
            attempts = _as_int(h.get(messaging.DL_ATTEMPTS), _as_int(h.get(messaging.ATTEMPT), 1))
            at = _as_time(h.get(messaging.DL_AT))
            service = _as_str(h.get(messaging.DL_SERVICE))
        elif death is not None:
            origin = "broker"
            reason = _as_str(death.get("reason")) or "unknown"
            error = f"dead-lettered by the broker ({reason})"
            queue = _as_str(death.get("queue")) or base
            attempts = _as_int(h.get(messaging.ATTEMPT), 1)
            at = _as_time(death.get("time"))
            service = None
        else:
            origin, reason, error, queue, service = "unknown", "unknown", None, base, None
            attempts = _as_int(h.get(messaging.ATTEMPT), 1)
            at = None
        return cls(
            dlq=dlq,
            position=position,
            message_id=message_id,
            type=type or None,
            reason=reason,
            error=error,
            queue=queue,
            attempts=max(attempts, 1),
            dead_lettered_at=at,
            service=service,
            origin=origin,
            delivery_count=_as_int(h.get("x-delivery-count"), 0),
            correlation_id=correlation_id,
            headers=h,
            body=body,
        )

    @classmethod
    def from_message(cls, dlq: str, position: int, message: AbstractIncomingMessage) -> DeadLetter:
        return cls.from_parts(
            dlq,
            position,
            body=message.body,
            headers=message.headers,
            message_id=message.message_id,
            type=message.type,
            correlation_id=message.correlation_id,
        )

    @property
    def identity(self) -> tuple[str | None, bytes, str]:
        """What tells this copy from any other: id, body and headers (but the read count)."""
        headers = {k: v for k, v in self.headers.items() if k != "x-delivery-count"}
        return self.message_id, self.body, json.dumps(jsonable(headers), sort_keys=True)

    @property
    def replay_queue(self) -> str:
        """Where a replay publishes it: the queue it came from (the DLQ's own, if unknown)."""
        return self.queue if self.queue in CATALOGUE.queue_names else source_queue(self.dlq)

    def masked_body(self) -> Any:
        """The body for ops' eyes: parsed JSON with personal data masked, else the raw text
        masked as free text (personal fields of a truncated JSON text included)."""
        parsed = _parse_body(self.body)
        if parsed is _UNPARSABLE:
            return mask_text(_raw_text(self.body))
        return mask(parsed)

    def masked_headers(self) -> dict[str, Any]:
        masked: dict[str, Any] = mask(jsonable(self.headers))
        return masked

    def summary(self) -> dict[str, Any]:
        """What a listing shows: JSON-safe, without the body."""
        return {
            "dlq": self.dlq,
            "position": self.position,
            "message_id": self.message_id,
            "type": mask_text(self.type) if self.type else None,  # whatever a body said
            "reason": self.reason,
            "error": mask_text(self.error) if self.error else None,
            "queue": self.queue,
            "attempts": self.attempts,
            "dead_lettered_at": _iso(self.dead_lettered_at),
            "service": self.service,
            "origin": self.origin,
            "delivery_count": self.delivery_count,
            "correlation_id": self.correlation_id,
        }

    def detail(self) -> dict[str, Any]:
        """`summary` plus the headers and the body, personal data masked."""
        return {**self.summary(), "headers": self.masked_headers(), "body": self.masked_body()}


def replay_headers(dead: DeadLetter, *, audit_id: int | None = None) -> dict[str, Any]:
    """The headers of a replayed copy: no `tq-dl-*`, no broker `x-*` (3.13+ ignores or refuses
    them from clients), and one more attempt."""
    headers: dict[str, Any] = {
        key: _publishable(value)
        for key, value in dead.headers.items()
        if not key.startswith(("tq-dl-", "x-"))
    }
    headers[messaging.ATTEMPT] = dead.attempts + 1
    if audit_id is not None:
        headers["tq-replay-audit"] = audit_id
    return headers


def _publishable(value: Any) -> Any:
    # The client decodes a non-UTF-8 long string to bytes but can only encode a bytearray.
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, Mapping):
        return {k: _publishable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_publishable(v) for v in value]
    return value


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filter:
    """Which dead letters a replay or discard takes; empty fields match anything.

    Times are the dead-letter time: `since <= t < until`; a message without a time matches
    no time bound.
    """

    message_ids: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()  # source queues: `intake`, not `intake.dlq`
    reasons: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def build(
        cls,
        *,
        message_ids: Iterable[str] = (),
        queues: Iterable[str] = (),
        reasons: Iterable[str] = (),
        types: Iterable[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Filter:
        return cls(
            message_ids=frozenset(message_ids),
            queues=frozenset(source_queue(dead_letter_queue(q)) for q in queues),
            reasons=frozenset(reasons),
            types=frozenset(types),
            since=since,
            until=until,
        )

    @property
    def selects_all(self) -> bool:
        return self == Filter()

    def dead_letter_queues(self) -> list[str]:
        return dead_letter_queues(self.queues)

    def matches(self, dead: DeadLetter) -> bool:
        if self.message_ids and (dead.message_id or "") not in self.message_ids:
            return False
        if self.queues and source_queue(dead.dlq) not in self.queues:
            return False
        if self.reasons and dead.reason not in self.reasons:
            return False
        if self.types and (dead.type or NO_TYPE) not in self.types:
            return False
        at = dead.dead_lettered_at
        if self.since is not None and (at is None or at < self.since):
            return False
        return not (self.until is not None and (at is None or at >= self.until))

    def describe(self) -> dict[str, Any]:
        """The filter as recorded in the audit log and shown in `--json` output."""
        described: dict[str, Any] = {"all": self.selects_all}
        for name in ("message_ids", "queues", "reasons", "types"):
            values: frozenset[str] = getattr(self, name)
            if values:
                described[name] = sorted(values)
        if self.since is not None:
            described["since"] = self.since.isoformat()
        if self.until is not None:
            described["until"] = self.until.isoformat()
        return described


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class QueueSummary:
    dlq: str
    messages: int  # by passive declare
    oldest: datetime | None
    newest: datetime | None

    @property
    def queue(self) -> str:
        return source_queue(self.dlq)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dlq": self.dlq,
            "queue": self.queue,
            "messages": self.messages,
            "oldest": _iso(self.oldest),
            "newest": _iso(self.newest),
        }


@dataclass(frozen=True)
class Group:
    dlq: str
    reason: str
    type: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "dlq": self.dlq,
            "reason": self.reason,
            "type": mask_text(self.type),
            "count": self.count,
        }


@dataclass
class Outcome:
    """What a replay or discard did (or, dry run, would do)."""

    action: str
    selection: Filter
    dry_run: bool = False
    audit_id: int | None = None
    matched: list[DeadLetter] = field(default_factory=list)
    done: list[DeadLetter] = field(default_factory=list)  # replayed or discarded
    failed: list[DeadLetter] = field(default_factory=list)  # refused by the broker, left in place
    error: str | None = None
    only: frozenset[str] | None = None  # message ids confirmed by the operator, if any
    interrupted: list[int] = field(default_factory=list)  # earlier runs' rows found `started`

    def selects(self, dead: DeadLetter) -> bool:
        if self.only is not None and (dead.message_id or "") not in self.only:
            return False
        return self.selection.matches(dead)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def to_dict(self) -> dict[str, Any]:
        done, failed = {id(d) for d in self.done}, {id(d) for d in self.failed}
        return {
            "action": self.action,
            "dry_run": self.dry_run,
            "audit_id": self.audit_id,
            "filter": self.selection.describe(),
            "matched": len(self.matched),
            "done": len(self.done),
            "failed": len(self.failed),
            "error": self.error,
            "interrupted_runs": self.interrupted,
            "messages": [
                {
                    **d.summary(),
                    "target": d.replay_queue if self.action == "replay" else None,
                    "outcome": self._message_outcome(id(d) in done, id(d) in failed),
                }
                for d in self.matched
            ],
        }

    def _message_outcome(self, done: bool, failed: bool) -> str:
        if self.dry_run:
            return f"would_{self.action}"
        if done:
            return "replayed" if self.action == "replay" else "discarded"
        return "failed" if failed else "not_attempted"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    action: str
    actor: str
    status: str
    filter: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    matched: int
    succeeded: int
    failed: int
    message_ids: list[str]
    error: str | None
    host: str
    pid: int

    @property
    def interrupted(self) -> bool:
        """Killed or cut off before it could close its row (closed by a later run)."""
        return self.status == "failed" and (self.error or "").startswith(INTERRUPTED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "actor": self.actor,
            "status": "interrupted" if self.interrupted else self.status,
            "filter": self.filter,
            "started_at": self.started_at.isoformat(),
            "finished_at": _iso(self.finished_at),
            "matched": self.matched,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "message_ids": self.message_ids,
            "error": self.error,
            "host": self.host,
            "pid": self.pid,
        }


# --------------------------------------------------------------------------- audit log


class Audit:
    """The `dlq_audit` table: one row per replay or discard, `started` then `completed`."""

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        self.conn = conn

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: Settings) -> AsyncIterator[Audit]:
        try:
            conn = await asyncpg.connect(settings.database_url)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise AuditUnreachable(
                f"cannot connect to PostgreSQL for the audit log: {exc}"
            ) from exc
        try:
            yield cls(conn)
        finally:
            await conn.close()

    async def start(self, action: str, actor: str, selection: Filter) -> int:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        try:
            audit_id = await self.conn.fetchval(
                """INSERT INTO dlq_audit (action, actor, filter, host, pid)
                   VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id""",
                action,
                actor,
                json.dumps(selection.describe()),
                socket.gethostname(),
                os.getpid(),
            )
        except asyncpg.UndefinedTableError as exc:
            raise AuditUnavailable(
                "the dlq_audit table is missing: run `ticketq db migrate` first"
            ) from exc
        assert isinstance(audit_id, int)
        return audit_id

    async def progress(self, audit_id: int, message_ids: Sequence[str]) -> None:
        """Record messages about to leave the DLQ (before their ack)."""
        await self.conn.execute(
            "UPDATE dlq_audit SET message_ids = message_ids || $2::text[] WHERE id = $1",
            audit_id,
            list(message_ids),
        )

    async def close_interrupted(self, by: int) -> list[int]:
        """Close the rows of earlier runs still `started` (killed, or cut off from the database
        or the broker): `failed`, the error starting `interrupted:`. Only a run holding the
        tool's lock may call this; their `message_ids` stay as the record of what they moved.

        (`failed` and not a status of its own: the table's CHECK allows started, completed and
        failed, and a migration is not this change's to make.)
        """
        rows = await self.conn.fetch(
            """UPDATE dlq_audit
                  SET status = 'failed', finished_at = now(),
                      error = $2 || ' the run ended without closing its row'
                              || ' (found by run ' || $1::bigint || ')'
                WHERE status = 'started' AND id <> $1
            RETURNING id""",
            by,
            INTERRUPTED,
        )
        return sorted(r["id"] for r in rows)

    async def finish(self, outcome: Outcome) -> None:
        assert outcome.audit_id is not None
        await self.conn.execute(
            """UPDATE dlq_audit
                  SET status = $2, finished_at = now(), matched = $3, succeeded = $4,
                      failed = $5, error = $6
                WHERE id = $1""",
            outcome.audit_id,
            "completed" if outcome.ok else "failed",
            len(outcome.matched),
            len(outcome.done),
            len(outcome.failed),
            outcome.error,
        )

    async def entries(self, limit: int = 20) -> list[AuditEntry]:
        try:
            rows = await self.conn.fetch(
                "SELECT * FROM dlq_audit ORDER BY started_at DESC, id DESC LIMIT $1", limit
            )
        except asyncpg.UndefinedTableError as exc:
            raise AuditUnavailable(
                "the dlq_audit table is missing: run `ticketq db migrate` first"
            ) from exc
        return [
            AuditEntry(
                id=r["id"],
                action=r["action"],
                actor=r["actor"],
                status=r["status"],
                filter=json.loads(r["filter"]) if isinstance(r["filter"], str) else r["filter"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                matched=r["matched"],
                succeeded=r["succeeded"],
                failed=r["failed"],
                message_ids=list(r["message_ids"]),
                error=r["error"],
                host=r["host"],
                pid=r["pid"],
            )
            for r in rows
        ]


async def audit_entries(settings: Settings, limit: int = 20) -> list[AuditEntry]:
    async with Audit.connect(settings) as audit:
        return await audit.entries(limit)


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
            connection = await aio_pika.connect(
                settings.amqp_url, client_properties={"connection_name": "ticketq-dlq"}
            )
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
