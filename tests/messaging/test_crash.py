"""A worker killed (SIGKILL) at the worst moments loses nothing and does nothing twice (§10).

Each test runs intake as a real OS process with a failpoint armed: the process kills itself
at that exact step, with no cleanup and no ack, as a machine would die there. A clean worker
started afterwards must finish the job: exactly one ticket, and one routed message, or a
duplicate that the receiving inbox drops.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel

from services.catalogue import CATALOGUE
from services.intake.client import TicketPublisher
from services.presale.worker import SERVICE as PRESALE
from shared.config import Settings
from shared.db import Pool
from shared.messaging import topology as messaging
from tests.helpers import (
    WorkerProcess,
    WorkerProcesses,
    captured_logs,
    contact,
    depth,
    handled,
    running,
    take_all,
    wait_until,
)

KILLED = -signal.SIGKILL  # Popen's returncode for a process that died of SIGKILL


@pytest.fixture
async def workers(tmp_path: Path) -> Any:
    started = WorkerProcesses(tmp_path)
    yield started
    await started.close()


async def died(worker: WorkerProcess) -> int:
    """Wait for the worker to die by itself (its failpoint); its exit code."""
    code = await worker.wait_exit()
    await worker.stop()  # closes its log; no signal, it is gone
    return code


async def count(db: Pool, sql: str, *args: object) -> int:
    n = await db.fetchval(sql, *args)
    assert isinstance(n, int)
    return n


async def routed(channel: AbstractChannel) -> int:
    return await depth(channel, "presale") + await depth(channel, "aftersales")


@pytest.mark.parametrize(
    ("failpoint", "committed", "second_pass"),
    [
        # Committed, not acked: the redelivery finds its message id in the inbox; the outbox
        # row the dead process never relayed is published by the next one's relay.
        ("after_commit", True, "duplicate_message"),
        # Died inside the transaction: nothing was written; the redelivery does it all.
        ("before_commit", False, "created"),
    ],
)
async def test_a_worker_killed_around_its_commit_makes_one_ticket_and_one_message(
    settings: Settings,
    channel: AbstractChannel,
    db: Pool,
    workers: WorkerProcesses,
    failpoint: str,
    committed: bool,
    second_pass: str,
) -> None:
    async with TicketPublisher(settings.amqp_url, producer="t") as pub:
        message_id = await pub.publish(
            contact("chat-crash", subject="收到的杯子破损了", order_id="o-1")
        )

    # A long idle poll: the relay then runs only when woken by a commit, and the process dies
    # right after that wake-up without yielding, so it cannot also have published the row
    # (that crash, inside the relay, is the next test's).
    dying = workers.start(
        "intake", settings.model_copy(update={"relay_idle_poll": 60.0}), failpoints=failpoint
    )
    assert await died(dying) == KILLED

    async def back_in_queue() -> bool:  # the broker saw the connection drop: redelivery
        return await depth(channel, "intake") == 1

    await wait_until(back_in_queue, what="the unacked delivery back in the queue")
    n = 1 if committed else 0
    assert await count(db, "SELECT count(*) FROM tickets") == n
    assert await count(db, "SELECT count(*) FROM inbox WHERE message_id = $1", message_id) == n
    assert await count(db, "SELECT count(*) FROM outbox") == n
    assert await routed(channel) == 0

    clean = workers.start("intake", settings)

    async def done() -> bool:
        return (
            clean.alive()
            and await routed(channel) == 1
            and await count(db, "SELECT count(*) FROM outbox") == 0
            and '"event": "message_handled"' in clean.log()
        )

    await wait_until(done, what="the clean worker's pass and its routed message")
    assert await clean.stop() == 0

    assert await depth(channel, "intake") == 0, "the redelivery was acked"
    assert [line["outcome"] for line in handled(clean.lines())] == [second_pass]
    assert await count(db, "SELECT count(*) FROM tickets") == 1
    assert await count(db, "SELECT count(*) FROM ticket_contacts") == 1
    assert await count(db, "SELECT count(*) FROM ticket_history") == 1
    assert await depth(channel, "intake.dlq") == 0
    [message] = await take_all(channel, "aftersales")
    assert await depth(channel, "presale") == 0
    ticket_id = await db.fetchval("SELECT id FROM tickets")
    assert message.type == "ticket.routed" and message.correlation_id == ticket_id


async def test_a_relay_killed_after_the_confirm_publishes_twice_and_the_receiver_acts_once(
    settings: Settings, channel: AbstractChannel, db: Pool, workers: WorkerProcesses
) -> None:
    async with TicketPublisher(settings.amqp_url, producer="t") as pub:
        await pub.publish(contact("chat-relay", subject="这款有现货吗?"))  # an inquiry: presale

    # The broker confirmed the routed message; the process dies before deleting the outbox row.
    dying = workers.start("intake", settings, failpoints="relay_after_publish")
    assert await died(dying) == KILLED
    assert await depth(channel, "presale") == 1
    assert await count(db, "SELECT count(*) FROM outbox") == 1, "the delete was rolled back"
    assert await count(db, "SELECT count(*) FROM tickets") == 1

    # The next relay publishes the row again: the same message, twice in the queue.
    clean = workers.start("intake", settings)

    async def relayed_again() -> bool:
        return (
            clean.alive()
            and await count(db, "SELECT count(*) FROM outbox") == 0
            and await depth(channel, "presale") == 2
        )

    await wait_until(relayed_again, what="the outbox row published a second time")
    assert await clean.stop() == 0
    assert await depth(channel, "intake") == 0
    presale = await channel.get_queue("presale")
    copies = [await presale.get(), await presale.get()]
    assert copies[0].message_id == copies[1].message_id
    assert copies[0].body == copies[1].body
    for copy in copies:
        await copy.nack(requeue=True)
    message_id = copies[0].message_id

    # Pre-sale takes both copies; its inbox lets the handler run for one of them only.
    async with captured_logs("info") as logs:
        async with running(PRESALE, settings):

            async def both_taken() -> bool:
                return len(handled(logs)) == 2

            await wait_until(both_taken, what="pre-sale handling both copies")
        presale_handled = handled(logs)

    # Handled once (whatever pre-sale does with a routed ticket), dropped once by the inbox.
    [first, second] = sorted(
        (line["outcome"] for line in presale_handled), key=lambda o: o == "duplicate_message"
    )
    assert second == "duplicate_message"
    assert first not in ("duplicate_message", "duplicate_contact", "dead_lettered")
    assert {line["message_id"] for line in presale_handled} == {message_id}
    inbox = await db.fetch("SELECT consumer, message_id FROM inbox WHERE consumer = 'presale'")
    assert [(r["consumer"], r["message_id"]) for r in inbox] == [("presale", message_id)]
    assert await depth(channel, "presale") == 0, "both copies acked"
    assert await depth(channel, "presale.dlq") == 0
    assert await count(db, "SELECT count(*) FROM tickets") == 1


async def test_a_message_that_kills_every_worker_is_dead_lettered_by_the_delivery_limit(
    settings: Settings, channel: AbstractChannel, db: Pool, workers: WorkerProcesses
) -> None:
    # Queue arguments must match on every declare: this test's topology, and every worker's,
    # has a small delivery limit.
    limited = settings.model_copy(update={"delivery_limit": 3})
    for name in CATALOGUE.queue_names:
        await channel.queue_delete(name)
        await channel.queue_delete(messaging.dead_letter_queue(name))
    await messaging.declare_topology(channel, limited, CATALOGUE.queue_names)

    async with TicketPublisher(settings.amqp_url, producer="t") as pub:
        poison_id = await pub.publish(contact("chat-poison", subject="退货"))

    async def settled() -> bool:  # back in the queue, or dead-lettered by the broker
        return await depth(channel, "intake") + await depth(channel, "intake.dlq") == 1

    crashes = 0
    while await depth(channel, "intake.dlq") == 0:
        assert crashes <= limited.delivery_limit, "the delivery limit never took effect"
        dying = workers.start("intake", limited, failpoints="before_commit")
        assert await died(dying) == KILLED
        crashes += 1
        await wait_until(settled, what="the poison message requeued or dead-lettered")
    # RabbitMQ dead-letters a message delivered without success more than `limit` times.
    assert crashes == limited.delivery_limit + 1

    [dead] = await take_all(channel, "intake.dlq")
    assert dead.message_id == poison_id
    assert dead.headers is not None
    deaths = dead.headers["x-death"]
    assert isinstance(deaths, list)
    [death] = deaths
    assert isinstance(death, dict)
    assert death["reason"] == "delivery_limit"
    assert death["queue"] == "intake"
    assert messaging.DL_REASON not in dead.headers, "dead-lettered by the broker, not the worker"
    assert await count(db, "SELECT count(*) FROM tickets") == 0
    assert await count(db, "SELECT count(*) FROM inbox") == 0

    # The queue is not blocked: a good ticket after it goes through a clean worker.
    async with TicketPublisher(settings.amqp_url, producer="t") as pub:
        await pub.publish(contact("chat-good", subject="这个有货吗?"))
    clean = workers.start("intake", limited)

    async def good_routed() -> bool:
        return clean.alive() and await depth(channel, "presale") == 1

    await wait_until(good_routed, what="the good ticket routed")
    assert await clean.stop() == 0
    assert await depth(channel, "intake") == 0
    assert [line["outcome"] for line in handled(clean.lines())] == ["created"]
    assert [r["external_id"] for r in await db.fetch("SELECT external_id FROM tickets")] == [
        "chat-good"
    ]
