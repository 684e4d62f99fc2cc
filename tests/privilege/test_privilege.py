"""Each service's credentials against the real servers (SPEC §10): refused on what is not its
own, enough for what it does, and `ticketq setup` idempotent."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from datetime import date
from pathlib import Path

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelAccessRefused, ChannelClosed

from services.aftersales.worker import SERVICE as AFTERSALES
from services.finance.worker import SERVICE as FINANCE
from services.intake.client import publish_ticket
from services.intake.worker import SERVICE as INTAKE
from shared.agents.identity import hash_password, revoke_agent, set_password, sign_in
from shared.bootstrap import start_service
from shared.calendar.load import sample_calendar
from shared.calendar.store import save_calendar
from shared.cli.db import database
from shared.clock import FixedClock
from shared.db import create_pool
from shared.messaging.envelope import Envelope
from shared.messaging.topology import DEAD_LETTER_EXCHANGE, EXCHANGE, REPLY_EXCHANGE
from shared.ops.dlq.broker import DeadLetters
from shared.ops.dlq.letters import Filter
from shared.report.cli import produce
from shared.report.daily import kept
from shared.report.timer import arm_next
from shared.setup import broker_admin, setup_broker, setup_database
from shared.setup.grants import APPEND_ONLY, LEDGERS, TABLES
from shared.tickets.contracts import HandOffArgs
from tests.helpers import T0, contact, wait_until
from tests.ops.test_dlq import dead_letter_by_hand, replay
from tests.privilege.conftest import Deployment
from tests.staff import add_roster, one, refund

PASSWORD = "Privileged-Pass-42"


async def _ignore(message: AbstractIncomingMessage) -> None:
    """A consumer that is never given a message: the broker refuses it first."""


# (who, another's queue, a routing key of a queue it does not publish to)
STRANGERS = [
    ("intake", "finance", "finance"),
    ("warehouse", "finance", "intake"),
    ("finance", "warehouse", "desk"),
    ("cli", "presale", "intake"),
    ("upstream", "intake", "presale"),
]


@pytest.mark.parametrize(("who", "queue", "key"), STRANGERS)
async def test_a_service_cannot_consume_delete_or_publish_to_another_ones_queue(
    deployment: Deployment, who: str, queue: str, key: str
) -> None:
    connection = await aio_pika.connect(deployment.settings(who).amqp_url)
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue)  # a passive look is allowed: depth, consumers
        with pytest.raises(ChannelAccessRefused):
            await q.consume(_ignore)

        channel = await connection.channel()
        with pytest.raises(ChannelAccessRefused):
            await channel.queue_delete(queue)

        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE)
        with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
            await exchange.publish(aio_pika.Message(b"{}"), routing_key=key)

        # Nobody writes to the default exchange (any queue by its name), answering workers
        # included: their answers go through `ticketq.replies`.
        channel = await connection.channel(publisher_confirms=True)
        with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
            await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=queue)

        # Nor dead-letters into another one's DLQ.
        channel = await connection.channel(publisher_confirms=True)
        dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=False)
        with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
            await dlx.publish(aio_pika.Message(b"{}"), routing_key=queue)


@pytest.mark.parametrize(
    ("who", "statement"),
    [
        ("intake", "INSERT INTO refunds (refund_id) VALUES ('x')"),
        ("intake", "UPDATE stock SET on_hand = 0"),
        ("intake", "INSERT INTO stock_movements (sku) VALUES ('x')"),
        ("warehouse", "INSERT INTO refunds (refund_id) VALUES ('x')"),
        ("warehouse", "UPDATE order_payments SET refunded = 0"),
        ("finance", "INSERT INTO shipments (handoff_id) VALUES ('x')"),
        ("presale", "UPDATE order_payments SET refunded = 0"),
        ("web", "UPDATE tickets SET status = 'closed'"),
        ("web", "SELECT * FROM refunds"),
    ],
)
async def test_a_service_cannot_touch_another_ones_tables(
    deployment: Deployment, who: str, statement: str
) -> None:
    conn = await deployment.connect(who)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_no_service_may_drop_a_table_or_change_history_or_ledgers(
    deployment: Deployment,
) -> None:
    for who in TABLES:
        conn = await deployment.connect(who)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="must be owner"):
                await conn.execute("DROP TABLE tickets")
            for table in sorted(APPEND_ONLY):
                column = await conn.fetchval(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum = 1",
                    table,
                )
                for change in (f"UPDATE {table} SET {column} = {column}", f"DELETE FROM {table}"):
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(change)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE mine (id int)")
        finally:
            await conn.close()


async def test_ledgers_are_written_by_their_own_service_only(deployment: Deployment) -> None:
    conn = await deployment.connect("finance")  # any role may ask about another's rights
    try:
        for owner, tables in LEDGERS.items():
            for table in tables:
                writers = {
                    who
                    for who in TABLES
                    if await conn.fetchval(
                        "SELECT has_table_privilege($1, $2, 'INSERT')",
                        deployment.logins.users[who],
                        table,
                    )
                }
                assert writers == {owner}, table
    finally:
        await conn.close()


async def _snapshot(deployment: Deployment) -> tuple[list[tuple[str, ...]], str]:
    conn = await asyncpg.connect(deployment.admin.database_url)
    try:
        grants = await conn.fetch(
            """SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants
                WHERE grantee = ANY($1) ORDER BY 1, 2, 3""",
            list(deployment.logins.users.values()),
        )
        owners = await conn.fetch(
            "SELECT relname, relowner::regrole::text FROM pg_class"
            " WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        )
    finally:
        await conn.close()
    vhost = deployment.admin.amqp_url.rsplit("/", 1)[-1]
    ctl = shlex.split(os.environ["TICKETQ_RABBITMQCTL"])
    broker = "".join(
        await asyncio.gather(
            *(
                asyncio.to_thread(_listed, [*ctl, "-q", verb, "-p", vhost])
                for verb in ("list_permissions", "list_topic_permissions")
            )
        )
    )
    return [tuple(r) for r in [*grants, *owners]], "\n".join(sorted(broker.splitlines()))


def _listed(command: list[str]) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout


async def test_setup_twice_gives_the_same_roles_users_grants_and_topology(
    deployment: Deployment,
) -> None:
    before = await _snapshot(deployment)
    assert any(row[1] == "refunds" for row in before[0])
    for _ in range(2):
        assert await setup_database(deployment.admin.database_url, deployment.credentials) == []
        await setup_broker(deployment.admin, deployment.credentials, broker_admin())
    assert await _snapshot(deployment) == before
    async with await aio_pika.connect(deployment.settings("intake").amqp_url) as connection:
        await (await connection.channel()).get_queue("intake")  # the topology is still there


@pytest.mark.parametrize(
    ("name", "queue"), [(EXCHANGE, "finance"), (DEAD_LETTER_EXCHANGE, "finance.dlq")]
)
async def test_setup_turns_a_direct_exchange_into_a_topic_one(
    deployment: Deployment, name: str, queue: str
) -> None:
    """A broker set up before `ticketq` (or `ticketq.dlx`) was a topic exchange: setup replaces
    it and binds the queues again, so a publish still reaches its queue."""
    connection = await aio_pika.connect(deployment.admin.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(name)
        await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)
        await setup_broker(deployment.admin, deployment.credentials, broker_admin())
        await setup_broker(deployment.admin, deployment.credentials, broker_admin())
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(  # refused if it were still direct
            name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(aio_pika.Message(b"{}"), routing_key="finance", mandatory=True)
        assert (await channel.get_queue(queue)).declaration_result.message_count == 1


async def test_a_worker_started_before_setup_says_so(deployment: Deployment) -> None:
    connection = await aio_pika.connect(deployment.admin.amqp_url)
    async with connection:
        await (await connection.channel()).queue_delete("intake")
    with pytest.raises(RuntimeError, match="no queue 'intake': run `ticketq setup` first"):
        await start_service(INTAKE, deployment.settings("intake"))


async def test_a_worker_upgraded_before_setup_says_so(deployment: Deployment) -> None:
    """An upgrade that adds to the topology (the replies exchange) needs `ticketq setup` again."""
    connection = await aio_pika.connect(deployment.admin.amqp_url)
    async with connection:
        await (await connection.channel()).exchange_delete(REPLY_EXCHANGE)
    with pytest.raises(RuntimeError, match=r"no exchange 'ticketq\.replies': run `ticketq setup`"):
        await start_service(INTAKE, deployment.settings("intake"))


async def test_each_service_on_its_own_credentials_carries_a_ticket_through(
    deployment: Deployment,
) -> None:
    """Upstream → intake → after-sales desk (assigned) → the agent's CLI hands it to finance,
    which refunds and returns it: the grants are enough, not just restrictive."""
    admin = await create_pool(deployment.admin, size=2)
    await add_roster(admin)
    for agent in ("a1", "f1"):  # the operators' step (`ticketq agent password`)
        await set_password(admin, agent, hash_password(PASSWORD), T0)  # type: ignore[arg-type]
    clock = FixedClock(T0)
    running = [
        await start_service(s, deployment.settings(s.name), clock=clock)
        for s in (INTAKE, AFTERSALES, FINANCE)
    ]
    try:
        await publish_ticket(
            deployment.settings("upstream").amqp_url,
            contact("priv-1", subject="我要退货", order_id="o-priv-1"),
        )

        async def assigned() -> bool:
            owner = await admin.fetchval(
                "SELECT owner_agent_id FROM tickets WHERE external_id = 'priv-1'"
            )
            return bool(owner == "a1")

        await wait_until(assigned, what="intake's ticket assigned by the after-sales desk")
        tid = str(await admin.fetchval("SELECT id FROM tickets WHERE external_id = 'priv-1'"))
        cli = deployment.settings("cli")
        a1, f1 = [(await sign_in(cli, agent, PASSWORD)).token for agent in ("a1", "f1")]
        handoff = HandOffArgs(role="finance", action="refund")
        handed = await one(cli, tid, "a1", handoff, token=a1)
        assert handed.accepted, handed
        state = await admin.fetchval("SELECT state FROM tickets WHERE id = $1", tid)
        refunded = await one(cli, tid, "f1", refund(state["handoffs"][-1]["id"], "59.00"), token=f1)
        assert refunded.accepted, refunded

        async def returned() -> bool:  # after-sales took intake's ticket and finance's result
            taken = await admin.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'aftersales'")
            return bool(taken == 2 and await admin.fetchval("SELECT count(*) FROM outbox") == 0)

        await wait_until(returned, what="the ticket back with its first handler")
        assert await admin.fetchval("SELECT count(*) FROM refunds") == 1
        row = await admin.fetchrow("SELECT owner_agent_id, status FROM tickets WHERE id = $1", tid)
        assert row is not None and (row["owner_agent_id"], row["status"]) == ("a1", "in_progress")
    finally:
        for r in running:
            await r.stop()
        await admin.close()


async def test_operators_run_on_the_ops_credentials_and_reach_no_further(
    deployment: Deployment,
) -> None:
    """As `ops`: `ticketq dlq` reads a DLQ, replays into the queue and keeps its audit; `agent
    password`, `agent revoke` and `calendar load` do their part. It may not consume a service's
    queue nor read a ticket."""
    admin = await create_pool(deployment.admin, size=1)
    await add_roster(admin)
    await admin.close()
    ops = deployment.settings("ops")
    lost = Envelope.wrap(contact("ops-1"), producer="t", message_id="m-ops-1")
    await dead_letter_by_hand(deployment.admin, [lost])
    async with DeadLetters.connect(ops) as dlq:
        assert [d.message_id for d in await dlq.read("intake")] == ["m-ops-1"]
    outcome = await replay(ops, Filter(message_ids=frozenset({"m-ops-1"})), who="ops")
    assert [d.message_id for d in outcome.done] == ["m-ops-1"] and not outcome.failed
    connection = await aio_pika.connect(deployment.admin.amqp_url)
    async with connection:
        channel = await connection.channel()
        assert (await channel.get_queue("intake")).declaration_result.message_count == 1
    conn = await deployment.connect("ops")
    try:
        assert await conn.fetchval("SELECT count(*) FROM dlq_audit WHERE action = 'replay'") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM tickets")
    finally:
        await conn.close()
    pool = await create_pool(ops, size=1)  # with the pool's JSON codec, as the CLI's
    try:
        assert await set_password(pool, "a1", hash_password(PASSWORD), T0)  # type: ignore[arg-type]
        assert await revoke_agent(pool, "a1", T0) == 0  # type: ignore[arg-type]
        assert await save_calendar(pool, sample_calendar(), "ops-test.yaml") >= 1  # type: ignore[arg-type]
    finally:
        await pool.close()
    connection = await aio_pika.connect(ops.amqp_url)
    async with connection:
        with pytest.raises(ChannelAccessRefused):
            await (await (await connection.channel()).get_queue("intake")).consume(_ignore)


async def test_the_daily_report_runs_on_the_report_credentials_and_reaches_no_further(
    deployment: Deployment, tmp_path: Path
) -> None:
    """As `report`: `report daily` builds a day's figures with the DLQs' depths, writes their
    CSVs and keeps the report; `report list` reads it back; `report schedule` arms the next.
    It may not change a ticket, read a password, nor take a message off a DLQ."""
    await dead_letter_by_hand(
        deployment.admin, [Envelope.wrap(contact("rep-1"), producer="t", message_id="m-rep-1")]
    )
    settings = deployment.settings("report")
    report, paths = await produce(settings, date(2026, 11, 11), None, tmp_path)
    assert report["dlq"]["queues"]["intake.dlq"] == 1
    assert {p.name for p in paths} >= {"received.csv"}
    async with database(settings) as conn:  # as the CLI connects, with its JSON codec
        assert [(r["day"], r["role"]) for r in await kept(conn)] == [(date(2026, 11, 11), None)]
        assert await arm_next(conn, T0) > T0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE tickets SET status = 'closed'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM agent_credentials")
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        with pytest.raises(ChannelAccessRefused):
            await (await (await connection.channel()).get_queue("intake.dlq")).consume(_ignore)
