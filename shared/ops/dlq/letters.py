"""A dead letter as ops see it: read from its headers and body (any bytes), masked; how a
selection (Filter) picks them; what a run reports (Outcome); audit rows as read back."""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from services.catalogue import CATALOGUE
from shared.messaging import topology as messaging
from shared.messaging.wire import UnreadableJson, read_json
from shared.pii import mask, mask_text

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
        # A secret is never shown, even masked: the broker's own dead-lettering (the delivery
        # limit) keeps every header, `authorization` included.
        shown = {k: v for k, v in self.headers.items() if k != messaging.AUTHORIZATION}
        masked: dict[str, Any] = mask(jsonable(shown))
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
