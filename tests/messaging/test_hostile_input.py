"""Hostile input on the real servers (issue 16): 2,000 messages, three in four of them bad in
every way we know, published to intake with good ones between, to a worker running meanwhile.

It must hold that: the worker never loses its connection, channel or consumer; every bad
message is dead-lettered once, by the worker, with its reason; every good one becomes one
ticket; and every `ticketq dlq` command still works on that DLQ, personal data masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pamqp import encode

from services.intake.worker import SERVICE as INTAKE
from shared.bootstrap import start_service
from shared.config import Settings
from shared.db import Pool
from shared.messaging import topology as messaging
from shared.messaging.envelope import Envelope
from shared.messaging.runtime import Worker
from tests.helpers import contact, depth, wait_until
from tests.ops.test_dlq import cli, cli_env, read  # noqa: F401  (cli_env: a fixture)

NAME, PHONE, STREET = "张三丰", "13907776655", "文三路100号"
PERSONAL = {"id": "c-9", "nick": "小李", "name": NAME, "phone": PHONE, "address": f"杭州市{STREET}"}
GOOD_EVERY = 4  # one message in four is good
TOTAL = 2_000


@dataclass(frozen=True)
class Sample:
    kind: str
    message: aio_pika.Message
    reason: str | None  # None: a good message
    publishing: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext


def envelope(message_id: str, **payload: Any) -> dict[str, Any]:
    ticket = contact(f"chat-{message_id}", text=f"我叫{NAME}, 电话 {PHONE}")
    wrapped = Envelope.wrap(ticket, producer="hostile", message_id=message_id)
    raw = wrapped.model_dump(mode="json")
    raw["payload"] = {**raw["payload"], "customer": PERSONAL, **payload}
    return raw


def message(message_id: str, body: bytes | dict[str, Any], **properties: Any) -> aio_pika.Message:
    return aio_pika.Message(
        body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode(),
        message_id=message_id,
        content_type=properties.pop("content_type", "application/json"),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        **properties,
    )


def nested(levels: int) -> dict[str, Any]:
    table: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        table = {"x": table}
    return table


@contextlib.contextmanager
def deep_encoding() -> Iterator[None]:
    """The client encodes tables by recursion too: let it, for the messages that need it."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


class RawKey(str):
    """A header key the encoder writes as bytes that are not UTF-8 (the broker takes them)."""


@contextlib.contextmanager
def raw_keys() -> Iterator[None]:
    short_string = encode.short_string

    def patched(value: str) -> bytes:
        return b"\x02\xff\xfe" if isinstance(value, RawKey) else short_string(value)

    encode.short_string = patched
    try:
        yield
    finally:
        encode.short_string = short_string


def bad(kind: str, i: int) -> Sample:
    mid = f"bad-{kind}-{i:04d}"
    good_body = envelope(mid)
    text = json.dumps(good_body, ensure_ascii=False)
    cases: dict[str, tuple[bytes | dict[str, Any], str, dict[str, Any]]] = {
        "deep-array": (b"[" * 5000 + b"]" * 5000, "malformed_json", {}),
        "deep-payload": (
            text[:-2].encode() + b', "x": ' + b"[" * 900 + b"]" * 900 + b"}}",
            "malformed_json",
            {},
        ),
        "huge-int": (text[:-1].encode() + b', "n": ' + b"7" * 5000 + b"}", "malformed_json", {}),
        "utf-16": (text.encode("utf-16"), "malformed_json", {}),
        "bom": (b"\xef\xbb\xbf" + text.encode(), "malformed_json", {}),
        "bad-utf-8": (
            text.encode()[:-40] + b"\xff\xfe" + text.encode()[-40:],
            "malformed_json",
            {},
        ),
        "truncated": (text.encode()[: len(text.encode()) // 2], "malformed_json", {}),
        "version-as-text": ({**good_body, "schema_version": "1"}, "invalid_contract", {}),
        "time-as-number": ({**good_body, "sent_at": 12345}, "invalid_contract", {}),
        "amount-as-number": (
            envelope(mid, order={"id": "o-1", "amount": 59.0}),
            "invalid_contract",
            {},
        ),
        "nul-in-text": (envelope(mid, text="你好\u0000"), "invalid_contract", {}),
        "long-id": ({**good_body, "message_id": "消" * 100}, "invalid_contract", {}),
        "unknown-type": ({**good_body, "type": "ticket.teleport"}, "unknown_type", {}),
        "version-2": ({**good_body, "schema_version": 2}, "unsupported_version", {}),
        "text-plain": (good_body, "invalid_properties", {"content_type": "text/plain"}),
        "reply-to-a-service": (good_body, "invalid_properties", {"reply_to": "finance"}),
        "deep-headers": (good_body, "invalid_properties", {"headers": {"h": nested(3_000)}}),
        "unreadable-headers": (good_body, "invalid_properties", {"headers": {RawKey("kk"): 1}}),
    }
    body, reason, properties = cases[kind]
    publishing = {"deep-headers": deep_encoding, "unreadable-headers": raw_keys}.get(
        kind, contextlib.nullcontext
    )
    return Sample(kind, message(mid, body, **properties), reason, publishing)


KINDS = [
    "deep-array", "deep-payload", "huge-int", "utf-16", "bom", "bad-utf-8", "truncated",
    "version-as-text", "time-as-number", "amount-as-number", "nul-in-text", "long-id",
    "unknown-type", "version-2", "text-plain", "reply-to-a-service", "deep-headers",
    "unreadable-headers",
]  # fmt: skip
RARE = {"deep-headers": 8, "unreadable-headers": 20}  # each costs the publisher a moment


def samples() -> list[Sample]:
    n_bad = TOTAL - TOTAL // GOOD_EVERY
    per_kind = (n_bad - sum(RARE.values())) // (len(KINDS) - len(RARE))
    bad_ones = [bad(k, i) for k in KINDS for i in range(RARE.get(k, per_kind))]
    random.Random(16).shuffle(bad_ones)
    out: list[Sample] = []
    for i, sample in enumerate(bad_ones):
        if i % (GOOD_EVERY - 1) == 0:
            mid = f"good-{i:04d}"
            out.append(Sample("good", message(mid, envelope(mid)), None))
        out.append(sample)
    return out


async def publish(settings: Settings, batch: list[Sample]) -> None:
    """In order; the ones needing a special encoder one at a time, the rest together."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(on_return_raises=True)
        exchange = await channel.get_exchange(messaging.EXCHANGE, ensure=False)
        pending: list[Sample] = []
        for sample in [*batch, None]:
            if sample is None or sample.publishing is not contextlib.nullcontext:
                await messaging.publish_all((exchange, "intake", s.message) for s in pending)
                pending = []
                if sample is not None:
                    with sample.publishing():
                        await exchange.publish(sample.message, "intake", mandatory=True)
            else:
                pending.append(sample)


@contextlib.asynccontextmanager
async def watched_worker(
    settings: Settings, channel: AbstractChannel, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Counter[str], list[int]]]:
    """The intake worker in this process; yields (deliveries per message id, consumer counts
    seen on intake), and checks at the end that its connection and channel never changed."""
    deliveries: Counter[str] = Counter()
    on_message = Worker._on_message

    async def counted(worker: Worker, message: AbstractIncomingMessage) -> None:
        deliveries[message.message_id or ""] += 1
        await on_message(worker, message)

    monkeypatch.setattr(Worker, "_on_message", counted)
    handle = await start_service(INTAKE, settings)
    closed: list[object] = []
    handle.connection.close_callbacks.add(lambda *args: closed.append(args))
    underlay = await handle.workers[0].channel.get_underlay_channel()
    consumers: list[int] = []

    async def watch() -> None:
        while True:
            consumers.append((await messaging.queue_stats(channel, "intake"))[1])
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        yield deliveries, consumers
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        same_channel = await handle.workers[0].channel.get_underlay_channel() is underlay
        lost = list(closed)  # before our own close below
        await handle.stop()
    assert not lost and same_channel, "the worker lost its connection or channel"


@pytest.mark.usefixtures("cli_env")
async def test_hostile_input_is_refused_once_with_its_reason_and_takes_no_worker_down(
    settings: Settings, channel: AbstractChannel, db: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = samples()
    expected = {s.message.message_id: s.reason for s in batch if s.reason}
    good = [s.message.message_id for s in batch if s.reason is None]
    assert TOTAL - 10 <= len(batch) <= TOTAL and len(good) >= 450

    async with watched_worker(settings, channel, monkeypatch) as (deliveries, consumers):
        await publish(settings, batch)
        await wait_until(
            lambda: _settled(channel, db, len(expected), len(good)),
            timeout=60,
            what="every message handled",
        )
    assert consumers and set(consumers) == {1}, "intake was without its consumer"
    assert set(deliveries.values()) == {1}, "a message was delivered twice"
    assert len(deliveries) == len(batch)

    # Every bad one dead-lettered by the worker, once, with its reason.
    dead = await read(settings)
    assert Counter(d.message_id for d in dead) == Counter(expected.keys())
    assert {d.message_id: d.reason for d in dead} == expected
    assert {(d.origin, d.attempts) for d in dead} == {("worker", 1)}
    # Every good one handled once.
    assert await db.fetchval("SELECT count(*) FROM tickets") == len(good)
    assert await db.fetchval("SELECT count(DISTINCT message_id) FROM inbox") == len(good)

    await _every_dlq_command_works(expected)


async def _settled(channel: AbstractChannel, db: Pool, bad: int, good: int) -> bool:
    tickets = await db.fetchval("SELECT count(*) FROM tickets")
    return (
        tickets == good
        and await depth(channel, "intake.dlq") == bad
        and await depth(channel, "intake") == 0
    )


async def _every_dlq_command_works(expected: dict[str | None, str]) -> None:
    by_reason = Counter(expected.values())
    listed = await cli("list", "--queue", "intake", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["messages"] == len(expected)

    grouped = await cli("group", "--queue", "intake", "--json")
    assert grouped.exit_code == 0, grouped.output
    assert {g["reason"]: g["count"] for g in json.loads(grouped.stdout)} == dict(by_reason)

    # A few kinds one by one (every read takes the whole DLQ), in text and JSON, masked.
    for kind in ("truncated", "utf-16", "deep-headers"):
        shown = [await cli("show", f"bad-{kind}-0000", *json_) for json_ in ([], ["--json"])]
        for result in shown:
            assert result.exit_code == 0, (kind, result.output)
            _masked(result.stdout)
    peeked = await cli("peek", "--queue", "intake", "-n", str(len(expected)), "--json")
    assert peeked.exit_code == 0, peeked.output
    assert len(json.loads(peeked.stdout)) == len(expected)
    _masked(peeked.stdout)
    _masked((await cli("peek", "--queue", "intake", "-n", "300")).stdout)

    dry = await cli("replay", "--all", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["matched"] == len(expected)

    discarded = await cli("discard", "--reason", "malformed_json", "--yes", "--json")
    assert discarded.exit_code == 0, discarded.output
    assert json.loads(discarded.stdout)["done"] == by_reason["malformed_json"]
    replayed = await cli("replay", "--reason", "invalid_properties", "--json")
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout)["done"] == by_reason["invalid_properties"]
    left = await cli("list", "--queue", "intake", "--json", "--counts-only")
    assert json.loads(left.stdout)[0]["messages"] == (
        len(expected) - by_reason["malformed_json"] - by_reason["invalid_properties"]
    )


def _masked(output: str) -> None:
    for secret in (NAME, PHONE, STREET, NAME.encode("unicode_escape").decode()):
        assert secret not in output
