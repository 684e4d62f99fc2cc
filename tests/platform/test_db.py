"""The schema's own guarantees, against the real PostgreSQL and RabbitMQ (§4, §9, §10)."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
import aiormq
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from services.catalogue import CATALOGUE
from shared.config import Settings
from shared.db import Pool, migrate, migrations
from shared.messaging import topology as messaging
from tests.helpers import depth


async def insert_ticket(
    conn: Pool, ticket_id: str, *, order_id: str | None, status: str = "queued"
) -> None:
    await conn.execute(
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                               customer_id, customer, order_id, subject, body, owner_role,
                               opened_at)
           VALUES ($1, 'inquiry', $2, 'wangwang', 'normal', 'im-gateway', $1, 'c-1',
                   '{"id": "c-1", "nick": "n"}', $3, '在吗', '', 'presale', now())""",
        ticket_id,
        status,
        order_id,
    )


async def test_migrations_are_recorded_and_running_them_again_changes_nothing(
    database_url: str, db: Pool
) -> None:
    names = [name for name, _ in migrations()]
    assert names and names == sorted(names)
    recorded = await db.fetch("SELECT name FROM schema_migrations ORDER BY name")
    assert [r["name"] for r in recorded] == names

    schema = """SELECT table_name, column_name, data_type FROM information_schema.columns
                WHERE table_schema = 'public' ORDER BY 1, 2"""
    before = await db.fetch(schema)
    assert await migrate(database_url) == []
    assert await migrate(database_url) == []
    assert await db.fetch(schema) == before
    assert await db.fetchval("SELECT count(*) FROM schema_migrations") == len(names)


async def test_ticket_history_is_append_only(db: Pool) -> None:
    await insert_ticket(db, "T1", order_id=None)
    await db.execute(
        """INSERT INTO ticket_history (ticket_id, at, actor_id, actor_name, action, message_id)
           VALUES ('T1', $1, 'system:intake', 'intake', 'opened', 'm-1')""",
        datetime.now(UTC),
    )
    refusals = {
        "UPDATE": "UPDATE ticket_history SET action = 'forged'",
        "DELETE": "DELETE FROM ticket_history",
        "TRUNCATE": "TRUNCATE ticket_history",
    }
    for operation, sql in refusals.items():
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError,
            match=f"ticket_history is append-only: {operation} refused",
        ):
            await db.execute(sql)
    rows = await db.fetch("SELECT ticket_id, action FROM ticket_history")
    assert [(r["ticket_id"], r["action"]) for r in rows] == [("T1", "opened")]


async def test_pii_reveals_are_append_only_and_say_so(db: Pool) -> None:
    await insert_ticket(db, "T1", order_id=None)
    await db.execute("INSERT INTO pii_reveals (agent_id, ticket_id) VALUES ('s1', 'T1')")
    with pytest.raises(
        asyncpg.InsufficientPrivilegeError, match="pii_reveals is append-only: DELETE refused"
    ):
        await db.execute("DELETE FROM pii_reveals")


async def test_an_order_has_at_most_one_open_ticket(db: Pool) -> None:
    await insert_ticket(db, "T1", order_id="o-1")
    with pytest.raises(asyncpg.UniqueViolationError, match="tickets_one_open_per_order"):
        await insert_ticket(db, "T2", order_id="o-1")
    await insert_ticket(db, "T3", order_id="o-2")  # another order
    await insert_ticket(db, "T4", order_id=None)  # contacts about no order are not limited
    await insert_ticket(db, "T5", order_id=None)

    await db.execute("UPDATE tickets SET status = 'closed' WHERE id = 'T1'")
    await insert_ticket(db, "T6", order_id="o-1")  # closed ones do not count
    await insert_ticket(db, "T7", order_id="o-1", status="closed")
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute("UPDATE tickets SET status = 'queued' WHERE id = 'T1'")  # reopening
    open_for_o1 = await db.fetch(
        "SELECT id FROM tickets WHERE order_id = 'o-1' AND status <> 'closed'"
    )
    assert [r["id"] for r in open_for_o1] == ["T6"]


async def test_declaring_the_topology_again_is_harmless(
    settings: Settings, broker: AbstractRobustConnection, channel: AbstractChannel
) -> None:
    exchange = await channel.get_exchange(messaging.EXCHANGE)
    await exchange.publish(aio_pika.Message(b"{}", message_id="m-keep"), routing_key="presale")
    dlx = await channel.get_exchange(messaging.DEAD_LETTER_EXCHANGE)
    await dlx.publish(aio_pika.Message(b"{}", message_id="m-dead"), routing_key="presale")

    # Again, as every replica does at start-up, on one channel and on a fresh one.
    await messaging.declare_topology(channel, settings, CATALOGUE.queue_names)
    fresh = await broker.channel()
    await messaging.declare_topology(fresh, settings, CATALOGUE.queue_names)
    await fresh.close()

    assert await depth(channel, "presale") == 1, "messages survive a redeclare"
    assert await depth(channel, "presale.dlq") == 1
    for name in CATALOGUE.queue_names:  # routing still in place: one copy per queue
        await exchange.publish(aio_pika.Message(b"{}"), routing_key=name)
    depths = {name: await depth(channel, name) for name in CATALOGUE.queue_names}
    assert depths == {name: 2 if name == "presale" else 1 for name in CATALOGUE.queue_names}


async def test_declaring_with_other_queue_arguments_is_refused(
    settings: Settings, broker: AbstractRobustConnection
) -> None:
    """Why every process must share the settings that shape the queues (delivery limit,
    length bound): the broker refuses a declare whose arguments differ, closing the channel."""
    other = settings.model_copy(update={"delivery_limit": settings.delivery_limit + 1})
    ch = await broker.channel()
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="x-delivery-limit"):
        await messaging.declare_topology(ch, other, CATALOGUE.queue_names)
