"""`ticketq dlq` against the real broker and database (SPEC §9, issue 6).

Bad input is dead-lettered by a real intake worker, then listed, grouped, shown (personal data
masked), replayed (dry run, a message that fails again, a fixed one, a second copy of it) and
discarded, with an audit row for each replay and discard and the counts checked at every step.
A replay killed by SIGKILL half-way loses nothing, and every message's effects happen once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from typer.testing import CliRunner, Result

from services.catalogue import CATALOGUE
from services.intake.client import publish_raw
from services.intake.worker import SERVICE as INTAKE
from shared.cli.main import app
from shared.config import Settings, get_settings
from shared.db import Pool
from shared.messaging import topology as messaging
from shared.messaging.envelope import Envelope
from shared.messaging.topology import DL_ATTEMPTS, DL_REASON
from shared.ops.dlq import broker
from shared.ops.dlq.audit import Audit, audit_entries
from shared.ops.dlq.broker import LOCK_QUEUE, DeadLetters
from shared.ops.dlq.letters import AuditEntry, Busy, DeadLetter, DeadLetterError, Filter
from tests.helpers import contact, depth, running, take_all, wait_until

NAME, PHONE = "张三丰", "13812345678"

BAD_CONTRACT: dict[str, Any] = {
    "message_id": "m-bad-contract",
    "type": "ticket.submit",
    "schema_version": 1,
    "sent_at": "2026-11-23T02:00:00Z",
    "producer": "t",
    # No channel, subject, ...; and the customer's real name and phone, which ops must not see.
    "payload": {
        "source": "im-gateway",
        "external_id": "x-1",
        "customer": {"id": "c-9", "nick": "小李", "name": NAME, "phone": PHONE},
        "text": f"请打电话 {PHONE}",
    },
}
UNKNOWN_TYPE = {**BAD_CONTRACT, "message_id": "m-unknown", "type": "ticket.teleport"}
MALFORMED = b'{"message_id": "m-malformed", "payload": {"phone": "13812345678"'


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI reads `get_settings()`: point it at this test's vhost and database."""
    monkeypatch.setenv("TICKETQ_AMQP_URL", settings.amqp_url)
    monkeypatch.setenv("TICKETQ_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def cli(*args: str, input: str | None = None) -> Result:
    """`ticketq dlq ARGS` through typer's runner, in a thread (the command runs its own loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, ["dlq", *args], input=input)


async def read(settings: Settings, queue: str = "intake") -> list[DeadLetter]:
    async with DeadLetters.connect(settings) as dlq:
        return await dlq.read(queue)


async def ids_in(settings: Settings, queue: str = "intake") -> list[str | None]:
    return [d.message_id for d in await read(settings, queue)]


async def replay(settings: Settings, selection: Filter, *, who: str = "ops-test") -> Any:
    async with DeadLetters.connect(settings) as dlq, Audit.connect(settings) as audit:
        return await dlq.replay(selection, audit=audit, actor=who)


async def discard(settings: Settings, selection: Filter, *, who: str = "ops-test") -> Any:
    async with DeadLetters.connect(settings) as dlq, Audit.connect(settings) as audit:
        return await dlq.discard(selection, audit=audit, actor=who)


async def dead_letter_by_hand(
    settings: Settings,
    envelopes: list[Envelope],
    *,
    reason: str = "retries_exhausted",
    queue: str = "intake",
) -> None:
    """Put messages straight into `<queue>.dlq` as the worker would have (a stand-in for
    messages that failed while, say, the database was down)."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(on_return_raises=True)
        dlx = await channel.get_exchange(messaging.DEAD_LETTER_EXCHANGE, ensure=False)
        headers = messaging.dead_letter_headers(
            reason=reason,
            error="OSError: connection refused",
            queue=queue,
            attempts=1,
            service=queue,
        )
        await messaging.publish_all(
            (dlx, queue, messaging.amqp_message(e, headers=headers)) for e in envelopes
        )


def submit(external_id: str, message_id: str) -> Envelope:
    return Envelope.wrap(contact(external_id), producer="t", message_id=message_id)


async def count(db: Pool, sql: str) -> int:
    n = await db.fetchval(sql)
    assert isinstance(n, int)
    return n


async def counts_agree(settings: Settings, channel: AbstractChannel, expected: int) -> None:
    """`dlq list` (in JSON), a passive declare and a full read all say `expected`."""
    result = await cli("list", "--queue", "intake", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["messages"] == expected
    assert await depth(channel, "intake.dlq") == expected
    assert len(await read(settings)) == expected


async def _depth_at_least(channel: AbstractChannel, queue: str, n: int) -> bool:
    return await depth(channel, queue) >= n


def own_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The headers we published (the broker adds `x-delivery-count` on a quorum queue)."""
    return {k: v for k, v in (message.headers or {}).items() if k != "x-delivery-count"}


async def _depth_is(channel: AbstractChannel, queue: str, n: int) -> bool:
    return await depth(channel, queue) == n


# --------------------------------------------------------------------------- the walkthrough


@pytest.mark.usefixtures("cli_env")
async def test_dead_letters_are_listed_shown_replayed_discarded_and_audited(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    # Three kinds of bad input, dead-lettered by a real intake worker.
    await publish_raw(settings.amqp_url, [MALFORMED, BAD_CONTRACT, UNKNOWN_TYPE])
    async with running(INTAKE, settings):
        await wait_until(lambda: _depth_is(channel, "intake.dlq", 3), what="three dead letters")
    await counts_agree(settings, channel, 3)

    # list: every DLQ, with count, oldest and newest.
    listed = await cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {r["dlq"]: r for r in json.loads(listed.stdout)}
    assert list(rows) == [f"{q}.dlq" for q in CATALOGUE.queue_names]
    assert rows["intake.dlq"]["messages"] == 3 and rows["presale.dlq"]["messages"] == 0
    assert rows["intake.dlq"]["oldest"] <= rows["intake.dlq"]["newest"]
    assert rows["presale.dlq"]["oldest"] is None
    table = await cli("list")
    assert table.exit_code == 0 and "intake.dlq" in table.stdout and "MESSAGES" in table.stdout

    # group: by reason and type.
    grouped = await cli("group", "--json")
    assert grouped.exit_code == 0, grouped.output
    assert sorted((g["reason"], g["type"], g["count"]) for g in json.loads(grouped.stdout)) == [
        ("invalid_contract", "ticket.submit", 1),
        ("malformed_json", "(none)", 1),
        ("unknown_type", "ticket.teleport", 1),
    ]

    # show: everything ops need, the customer's name and phone masked, as table and as JSON.
    shown = await cli("show", "m-bad-contract")
    assert shown.exit_code == 0, shown.output
    for expected in ("invalid_contract", "payload.channel: Field required", "intake", "小李"):
        assert expected in shown.stdout
    assert NAME not in shown.output and PHONE not in shown.output
    assert "张***" in shown.stdout and "*********78" in shown.stdout
    detail = json.loads((await cli("show", "m-bad-contract", "--json")).stdout)
    assert len(detail) == 1
    assert detail[0]["reason"] == "invalid_contract" and detail[0]["queue"] == "intake"
    assert detail[0]["attempts"] == 1 and detail[0]["dead_lettered_at"]
    assert detail[0]["body"]["payload"]["customer"] == {
        "id": "c-9",
        "nick": "小李",
        "name": "张***",
        "phone": "*********78",
    }
    peeked = json.loads((await cli("peek", "--queue", "intake", "-n", "2", "--json")).stdout)
    assert [p["reason"] for p in peeked] == ["malformed_json", "invalid_contract"]
    malformed = peeked[0]  # publish_raw gave it a random id: it has no readable one of its own
    assert malformed["type"] is None and PHONE not in malformed["body"]
    assert malformed["body"].startswith('{"message_id": "m-malformed"')
    assert (await cli("show", "no-such-id")).exit_code == 1
    await counts_agree(settings, channel, 3)

    # replay --dry-run: shows what would move, moves nothing, writes no audit row.
    dry = await cli("replay", "--reason", "invalid_contract", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] and planned["matched"] == 1 and planned["done"] == 0
    assert planned["messages"][0]["message_id"] == "m-bad-contract"
    assert planned["messages"][0]["outcome"] == "would_replay"
    assert await depth(channel, "intake") == 0
    await counts_agree(settings, channel, 3)
    assert await audit_entries(settings) == []
    recent = await cli("discard", "--since", "10m", "--type", "ticket.teleport", "--dry-run")
    assert recent.exit_code == 0, recent.output
    assert "m-unknown" in recent.stdout and "would be discarded" in recent.stdout
    counted = json.loads((await cli("list", "--counts-only", "--json")).stdout)
    assert counted[0] == {
        "dlq": "intake.dlq",
        "queue": "intake",
        "messages": 3,
        "oldest": None,
        "newest": None,
    }
    await counts_agree(settings, channel, 3)

    # A replay of a message still invalid: it comes back with its attempt count increased.
    async with running(INTAKE, settings):
        again = await replay(settings, Filter.build(reasons=["invalid_contract"]))
        assert again.ok and [d.message_id for d in again.done] == ["m-bad-contract"]
        await wait_until(lambda: _returned(settings, "m-bad-contract", 2), what="the re-failure")
    await counts_agree(settings, channel, 3)
    assert await ids_in(settings) == [malformed["message_id"], "m-unknown", "m-bad-contract"]

    # A fixed message: dead-lettered while (say) the database was down, valid now.
    await dead_letter_by_hand(settings, [submit("chat-fixed", "m-fixed")])
    await counts_agree(settings, channel, 4)
    async with running(INTAKE, settings):
        fixed = await cli("replay", "m-fixed", "--who", "alice")
        assert fixed.exit_code == 0, fixed.output
        assert "replayed 1 of 1 matched" in fixed.stdout
        await wait_until(lambda: _tickets(db, 1), what="the replayed ticket")
    await counts_agree(settings, channel, 3)
    # A second dead-lettered copy of the same message: replayed, it changes nothing.
    await dead_letter_by_hand(settings, [submit("chat-fixed", "m-fixed")])
    async with running(INTAKE, settings):
        second = await replay(settings, Filter.build(message_ids=["m-fixed"]))
        assert second.ok and len(second.done) == 1
        await wait_until(lambda: _depth_is(channel, "intake", 0), what="the copy handled")
    assert await count(db, "SELECT count(*) FROM tickets") == 1
    assert await count(db, "SELECT count(*) FROM inbox WHERE message_id = 'm-fixed'") == 1
    await counts_agree(settings, channel, 3)

    # discard the rest, after a confirmation: "no" leaves them, "yes" drops them.
    refused = await cli("discard", "--queue", "intake", input="n\n")
    assert refused.exit_code == 1 and "aborted" in refused.stderr
    await counts_agree(settings, channel, 3)
    dropped = await cli("discard", "--queue", "intake", "--who", "bob", input="y\n")
    assert dropped.exit_code == 0, dropped.output
    assert "discarded 3 of 3 matched" in dropped.stdout
    await counts_agree(settings, channel, 0)

    # The audit log: one row per replay and discard (none for the dry run or the "no").
    entries = await audit_entries(settings)
    assert [(e.action, e.actor, e.status, e.matched, e.succeeded) for e in entries] == [
        ("discard", "bob", "completed", 3, 3),
        ("replay", "ops-test", "completed", 1, 1),
        ("replay", "alice", "completed", 1, 1),
        ("replay", "ops-test", "completed", 1, 1),
    ]
    assert entries[2].message_ids == ["m-fixed"] and entries[2].filter["message_ids"] == ["m-fixed"]
    assert entries[3].filter == {"all": False, "reasons": ["invalid_contract"]}
    assert entries[0].message_ids == [malformed["message_id"], "m-unknown", "m-bad-contract"]
    assert all(e.finished_at and e.started_at <= e.finished_at for e in entries)
    listed_audit = await cli("audit", "--limit", "2")
    assert listed_audit.exit_code == 0 and "bob" in listed_audit.stdout
    assert "alice" not in listed_audit.stdout
    as_json = json.loads((await cli("audit", "--json")).stdout)
    assert [a["id"] for a in as_json] == [e.id for e in entries]


async def _returned(settings: Settings, message_id: str, attempts: int) -> bool:
    return any(
        d.message_id == message_id and d.attempts == attempts and d.headers[DL_ATTEMPTS] == attempts
        for d in await read(settings)
    )


async def _tickets(db: Pool, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM tickets") == n


# --------------------------------------------------------------------------- order


async def test_messages_not_selected_keep_their_place_and_order(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    ids = [f"o-{i}" for i in range(8)]
    await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ids[:4]])
    await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ids[4:6]], reason="x")
    await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ids[6:]])
    assert await ids_in(settings) == ids
    # Reading returns all in order; a second read then sees them all in the broker's "returns"
    # list, where a partial read would have moved a prefix behind the rest.
    assert await ids_in(settings) == ids
    async with DeadLetters.connect(settings) as dlq:
        assert [d.message_id for d in await dlq.peek("intake", 2)] == ids[:2]
        assert [d.position for d in await dlq.peek("intake.dlq", 3)] == [0, 1, 2]
    assert await ids_in(settings) == ids

    # No worker runs: a replayed message waits in `intake`.
    replayed = await replay(settings, Filter.build(message_ids=["o-3"]))
    assert replayed.ok and await ids_in(settings) == [
        "o-0",
        "o-1",
        "o-2",
        "o-4",
        "o-5",
        "o-6",
        "o-7",
    ]
    discarded = await discard(settings, Filter.build(reasons=["x"]))
    assert [d.message_id for d in discarded.done] == ["o-4", "o-5"]
    await dead_letter_by_hand(settings, [submit("chat-o-8", "o-8")])
    assert await ids_in(settings) == ["o-0", "o-1", "o-2", "o-6", "o-7", "o-8"]

    # The replayed copy: same id, type and body, no dead-letter headers, one more attempt.
    [copy] = await take_all(channel, "intake")
    assert copy.message_id == "o-3" and copy.type == "ticket.submit"
    assert json.loads(copy.body)["payload"]["external_id"] == "chat-o-3"
    assert own_headers(copy) == {messaging.ATTEMPT: 2, "tq-replay-audit": replayed.audit_id}
    assert await count(db, "SELECT count(*) FROM dlq_audit") == 2


# --------------------------------------------------------------------------- broker dead letters


async def test_dead_letters_of_the_broker_itself_are_read_and_replayed(
    settings: Settings, channel: AbstractChannel
) -> None:
    """`x-death` (rejected, delivery_limit) rather than our `tq-dl-*` headers."""
    await publish_raw(settings.amqp_url, [{**UNKNOWN_TYPE, "message_id": "m-rejected"}])
    intake = await channel.get_queue("intake")
    message = await intake.get(timeout=5)
    await message.reject(requeue=False)  # the broker dead-letters it to intake.dlq
    await wait_until(lambda: _depth_is(channel, "intake.dlq", 1), what="the broker's dead letter")

    [dead] = await read(settings)
    assert (dead.origin, dead.reason, dead.queue, dead.attempts) == (
        "broker",
        "rejected",
        "intake",
        1,
    )
    assert dead.dead_lettered_at is not None and dead.type == "ticket.teleport"
    assert DL_REASON not in dead.headers

    outcome = await replay(settings, Filter.build(reasons=["rejected"]))
    assert outcome.ok and len(outcome.done) == 1
    [copy] = await take_all(channel, "intake")
    assert copy.message_id == "m-rejected"
    assert own_headers(copy) == {messaging.ATTEMPT: 2, "tq-replay-audit": outcome.audit_id}
    assert await depth(channel, "intake.dlq") == 0


# --------------------------------------------------------------------------- crash


async def test_replay_killed_midway_loses_nothing_and_effects_happen_once(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    ids = [f"k-{i}" for i in range(1, 6)]
    await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ids])
    env = {
        **os.environ,
        "TICKETQ_AMQP_URL": settings.amqp_url,
        "TICKETQ_DATABASE_URL": settings.database_url,
        # SIGKILL after the 3rd replayed copy is confirmed, before its dead letter is acked.
        "TICKETQ_FAILPOINTS": "dlq_after_publish:3",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.cli.main",
        "dlq",
        "replay",
        "--all",
        "--who",
        "crash",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == -9, out.decode()

    # Nothing lost: every message is still dead-lettered or was replayed, or both; those still
    # dead-lettered are in their order. (The broker returns the dead tool's unacked messages a
    # moment after it noticed the connection die.)
    await wait_until(lambda: _depth_at_least(channel, "intake.dlq", 3), what="the returns")
    left = [i or "" for i in await ids_in(settings)]
    assert len(left) >= 3 and left == sorted(left) and set(ids[2:]) <= set(left)
    assert await depth(channel, "intake") == 5  # one batch: all five confirmed before any ack
    [interrupted] = await audit_entries(settings)
    assert (interrupted.actor, interrupted.status, interrupted.finished_at) == (
        "crash",
        "started",
        None,
    )
    assert interrupted.message_ids == ids  # recorded before the first ack

    # Run it again, and the worker: five tickets, not eight; the DLQ empty.
    rerun = await replay(settings, Filter())
    assert rerun.ok and [d.message_id for d in rerun.done] == left
    async with running(INTAKE, settings):
        await wait_until(lambda: _depth_is(channel, "intake", 0), what="intake drained")
    assert await count(db, "SELECT count(*) FROM tickets") == 5
    assert await count(db, "SELECT count(DISTINCT message_id) FROM inbox") == 5
    assert await count(db, "SELECT count(*) FROM ticket_contacts") == 5
    assert await depth(channel, "intake.dlq") == 0
    latest, earlier = (await audit_entries(settings))[:2]
    assert (latest.status, latest.succeeded) == ("completed", len(left))
    # The killed run's row is closed by the next run, as interrupted, its record kept.
    assert rerun.interrupted == [interrupted.id] == [earlier.id]
    assert earlier.interrupted and earlier.to_dict()["status"] == "interrupted"
    assert (earlier.status, earlier.message_ids) == ("failed", ids)
    assert earlier.finished_at is not None
    assert earlier.error is not None and f"found by run {latest.id}" in earlier.error


# --------------------------------------------------------------------------- safety rails


async def test_one_dlq_command_at_a_time(
    settings: Settings, broker: AbstractRobustConnection
) -> None:
    async with DeadLetters.connect(settings):
        with pytest.raises(Busy, match=LOCK_QUEUE):
            async with DeadLetters.connect(settings, lock_wait=0.3):
                pass
    async with DeadLetters.connect(settings, lock_wait=0.3):  # freed with its connection
        pass


@pytest.mark.usefixtures("broker")
async def test_audit_rows_are_final_once_the_run_ended(settings: Settings, db: Pool) -> None:
    await dead_letter_by_hand(settings, [submit("chat-a", "a-1")])
    outcome = await discard(settings, Filter.build(message_ids=["a-1"]))
    assert outcome.ok and outcome.audit_id is not None
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("UPDATE dlq_audit SET actor = 'someone else'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("DELETE FROM dlq_audit")
    entry: AuditEntry = (await audit_entries(settings))[0]
    assert (entry.actor, entry.message_ids) == ("ops-test", ["a-1"])


@pytest.mark.usefixtures("cli_env")
async def test_cli_exit_codes(settings: Settings, channel: AbstractChannel) -> None:
    assert (await cli("replay")).exit_code == 2  # which messages?
    assert (await cli("replay", "--all", "--reason", "x")).exit_code == 2
    assert (await cli("peek", "--queue", "nowhere")).exit_code == 2
    assert (await cli("discard", "--since", "yesterday-ish")).exit_code == 2
    nothing = await cli("replay", "--reason", "no-such-reason")
    assert nothing.exit_code == 0 and "replayed 0 of 0 matched" in nothing.stdout
    empty = await cli("discard", "--all", "--yes", "--json")
    assert empty.exit_code == 0 and json.loads(empty.stdout)["matched"] == 0
    unasked = await cli("discard", "--reason", "no-such-reason")  # nothing to confirm
    assert unasked.exit_code == 0 and "discarded 0 of 0 matched" in unasked.stdout
    assert len(await audit_entries(settings)) == 3  # every replay and discard, even empty
    assert (await cli("peek", "--queue", "finance")).stdout.strip() == "finance.dlq is empty"
    assert (await cli("group")).stdout.strip() == "(no dead letters)"


async def test_a_replay_the_broker_refuses_leaves_the_message_in_place(
    settings: Settings, channel: AbstractChannel
) -> None:
    await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ("r-1", "r-2", "r-3")])
    intake = await channel.get_queue("intake")
    await intake.unbind(messaging.EXCHANGE, "intake")  # a replay to `intake` is now unroutable

    outcome = await replay(settings, Filter.build(message_ids=["r-2", "r-3"]))
    assert not outcome.ok and "r-2" in (outcome.error or "")
    assert [d.message_id for d in outcome.failed] == ["r-2", "r-3"]
    assert outcome.done == [] and await depth(channel, "intake") == 0
    assert await ids_in(settings) == ["r-1", "r-2", "r-3"]
    [entry] = await audit_entries(settings)
    assert (entry.status, entry.matched, entry.succeeded, entry.failed) == ("failed", 2, 0, 2)
    assert entry.message_ids == [] and "r-2" in (entry.error or "")


@pytest.mark.usefixtures("broker")
async def test_a_confirmed_discard_takes_only_what_the_operator_saw(settings: Settings) -> None:
    await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ("d-1", "d-2", "d-3")])
    async with DeadLetters.connect(settings) as dlq, Audit.connect(settings) as audit:
        outcome = await dlq.discard(Filter(), audit=audit, actor="t", only=["d-1", "d-3"])
    assert [d.message_id for d in outcome.done] == ["d-1", "d-3"]
    assert await ids_in(settings) == ["d-2"]


async def test_reading_a_dlq_many_times_never_drops_a_message(
    settings: Settings, channel: AbstractChannel
) -> None:
    """Every read is a delivery: the DLQs must have no delivery limit (RabbitMQ 3.x default;
    on 4.x, whose default is 20, this fails until a policy raises the DLQs' limit)."""
    await dead_letter_by_hand(settings, [submit("chat-many", "many-1")])
    async with DeadLetters.connect(settings) as dlq:
        for _ in range(25):
            [dead] = await dlq.read("intake")
    assert dead.delivery_count >= 24
    assert await ids_in(settings) == ["many-1"]


async def test_a_dlq_too_long_for_one_prefetch_is_read_one_get_at_a_time(
    settings: Settings, channel: AbstractChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker, "MAX_PREFETCH", 2)  # 65,535 in earnest
    ids = [f"g-{i}" for i in range(5)]
    await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ids])
    assert await ids_in(settings) == ids
    outcome = await discard(settings, Filter.build(message_ids=["g-1", "g-3"]))
    assert [d.message_id for d in outcome.done] == ["g-1", "g-3"]
    assert await ids_in(settings) == ["g-0", "g-2", "g-4"]


@pytest.mark.usefixtures("broker")
async def test_a_vhost_without_the_topology_is_an_error_not_a_crash(settings: Settings) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        ch = await connection.channel()
        await ch.queue_delete("finance.dlq")
    async with DeadLetters.connect(settings) as dlq:
        with pytest.raises(DeadLetterError, match=r"finance\.dlq does not exist"):
            await dlq.summaries()


# --------------------------------------------------------------------------- many at once


async def test_a_replay_of_a_thousand_leaves_no_replayed_copy_behind(
    settings: Settings, channel: AbstractChannel
) -> None:
    """RabbitMQ 3.10's quorum queue client holds back settles (acks) past 32 pending commands
    and drops the held ones when the channel closes: the last batch's acks were lost and the
    tool reported "1000 of 1000" with 67 replayed copies back in the DLQ (3 runs of 6)."""
    for run in range(5):
        ids = [f"r{run}-{i:04d}" for i in range(1_000)]
        await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ids])
        outcome = await replay(settings, Filter())
        assert outcome.ok and len(outcome.done) == len(outcome.matched) == 1_000
        assert await depth(channel, "intake.dlq") == 0, f"run {run}"
        assert await ids_in(settings) == [], f"run {run}"
        replayed = await take_all(channel, "intake")
        assert sorted(m.message_id or "" for m in replayed) == ids


async def test_acks_the_broker_dropped_are_made_good(
    settings: Settings, channel: AbstractChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Selected messages between others are acked one by one, and the broker may drop some of
    those acks (above): the tool reads the DLQ again and takes the copies it acked before,
    leaving the others in their order and a copy dead-lettered again after its replay alone."""
    ids = [f"f-{i:03d}" for i in range(200)]
    await dead_letter_by_hand(settings, [submit(f"chat-{i}", i) for i in ids[0::2]])
    await dead_letter_by_hand(
        settings, [submit(f"chat-{i}", i) for i in ids[1::2]], reason="handler_error"
    )
    dropped: list[int] = []
    ack = broker._Held.ack

    async def drop_some(held: broker._Held, messages: Any) -> None:
        if not dropped:  # the broker "drops" every third ack of the first batch
            dropped.extend(range(0, len(messages), 3))
            kept = [m for i, m in enumerate(messages) if i not in dropped]
            await ack(held, kept)
            held.acked += len(messages) - len(kept)  # the tool believes they were taken
            return
        await ack(held, messages)

    monkeypatch.setattr(broker._Held, "ack", drop_some)
    outcome = await replay(settings, Filter.build(reasons=["retries_exhausted"]))
    assert outcome.ok and len(outcome.done) == 100 and dropped
    assert await ids_in(settings) == ids[1::2]
    assert sorted(m.message_id or "" for m in await take_all(channel, "intake")) == ids[0::2]


@pytest.mark.usefixtures("cli_env")
async def test_the_next_run_marks_a_run_left_started_as_interrupted(settings: Settings) -> None:
    await dead_letter_by_hand(settings, [submit("chat-i", "i-1")])
    async with Audit.connect(settings) as audit:  # a run that died before closing its row
        lost = await audit.start("replay", "gone", Filter())
    listed = await cli("audit")
    assert "started" in listed.stdout and "interrupted" not in listed.stdout

    result = await cli("discard", "i-1", "--yes", "--who", "next")
    assert result.exit_code == 0, result.output
    assert f"earlier run(s) #{lost} had been interrupted" in result.stdout
    listed = await cli("audit")
    [row] = [line for line in listed.stdout.splitlines() if line.split()[:1] == [str(lost)]]
    assert "interrupted" in row and "gone" in row
    as_json = json.loads((await cli("audit", "--json")).stdout)
    assert [e["status"] for e in as_json] == ["completed", "interrupted"]
