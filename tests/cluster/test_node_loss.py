"""A RabbitMQ node dies (SIGKILL) under a load of tickets with handoffs: nothing is lost,
nothing is done twice, and the workers carry on at the surviving nodes by themselves.

Three worker processes (intake, after-sales, warehouse) and a load driver are given the
cluster's three URLs, node a first, so all of them are connected to a; the topology is
declared through a, so a also leads every quorum queue. Each ticket makes the trip
intake -> after-sales desk (auto-assigned to a1) -> hand-off to the warehouse ("ship") ->
the warehouse ships -> its result returns to a1. Killing a mid-way takes away the workers'
node and every queue's leader at once; the quorum queues (three replicas, a majority of two
left) keep what they confirmed. Publishes the driver saw unconfirmed are sent again with the
same message id, as any at-least-once publisher does; the consumers' inbox makes those
repeats no-ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aio_pika import Message
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from services.catalogue import CATALOGUE
from services.intake.client import TicketPublisher, contact_message_id
from services.intake.worker import SERVICE as INTAKE
from services.warehouse.contracts import ShipArgs
from shared.cli.commands import queue_of
from shared.config import Settings
from shared.db import Pool, create_pool
from shared.messaging import amqp
from shared.messaging.envelope import Contract, Envelope
from shared.messaging.topology import (
    AUTHORIZATION,
    EXCHANGE,
    amqp_message,
    dead_letter_queue,
    declare_topology,
    publish_all,
    queue_stats,
)
from shared.tickets.contracts import HandOffArgs
from tests.cluster.conftest import NODES, Cluster, needs_rabbitmq
from tests.helpers import (
    T0,
    WorkerProcess,
    command_for,
    contact,
    running,
    token_for,
    wait_until,
)
from tests.staff import add_roster

pytestmark = [pytest.mark.slow, pytest.mark.integration, needs_rabbitmq]

TICKETS = 150
ROLES = ("intake", "aftersales", "warehouse")


class Driver:
    """Publishes the contacts a few at a time and, as the database shows each ticket's step
    done, the next command; anything not confirmed by the broker is sent again next round
    (same message id)."""

    def __init__(
        self,
        settings: Settings,
        db: Pool,
        connection: AbstractRobustConnection,
        tokens: dict[str, str],
    ):
        self.settings, self.db, self.connection = settings, db, connection
        self.tokens = tokens  # each agent's session: commands carry it
        self.confirmed: set[str] = set()
        self.unconfirmed_rounds = 0
        self._channel: AbstractChannel | None = None

    async def send(self, outgoing: Sequence[tuple[str, str, Message]]) -> None:
        """Publish (key, queue, message)s with confirms; the confirmed keys are kept."""
        if not outgoing:
            return
        try:
            async with asyncio.timeout(10):
                if self._channel is None:
                    self._channel = await self.connection.channel(on_return_raises=True)
                exchange = await self._channel.get_exchange(EXCHANGE, ensure=False)
                await publish_all((exchange, q, m) for _, q, m in outgoing)
        except (*CONNECTION_EXCEPTIONS, TimeoutError):
            # The node went away mid-publish: again next round, on a new channel (a robust
            # channel caught in the middle of a publish may never publish again).
            self.unconfirmed_rounds += 1
            channel, self._channel = self._channel, None
            if channel is not None:
                with contextlib.suppress(*CONNECTION_EXCEPTIONS, TimeoutError):
                    await asyncio.wait_for(channel.close(), 2)
            return
        self.confirmed |= {key for key, _, _ in outgoing}

    def command(self, key: str, tid: str, actor: str, args: Contract) -> tuple[str, str, Message]:
        message = command_for(tid, actor, args)
        envelope = Envelope.wrap(message, producer="load", correlation_id=tid, message_id=key)
        signed = amqp_message(envelope, headers={AUTHORIZATION: self.tokens[actor]})
        return key, queue_of(message), signed

    async def run(self, n: int) -> None:
        contacts = [
            contact(f"kill-{i}", subject="我要退货", order_id=f"o-kill-{i}") for i in range(n)
        ]
        while True:
            due = [c for c in contacts if f"contact:{c.external_id}" not in self.confirmed][:10]
            await self.send(
                [
                    (
                        f"contact:{c.external_id}",
                        "intake",
                        amqp_message(
                            Envelope.wrap(c, producer="load", message_id=contact_message_id(c))
                        ),
                    )
                    for c in due
                ]
            )
            rows = await self.db.fetch("SELECT id, owner_agent_id, state FROM tickets")
            outgoing = []
            for row in rows:
                tid, handoffs = row["id"], row["state"]["handoffs"]
                if not handoffs and row["owner_agent_id"] == "a1":
                    args: Contract = HandOffArgs(role="warehouse", action="ship")
                    outgoing.append(self.command(f"handoff:{tid}", tid, "a1", args))
                elif handoffs and handoffs[0]["result"] is None:
                    args = ShipArgs(handoff_id=f"{tid}-H1", carrier="SF", tracking_number=tid)
                    outgoing.append(self.command(f"ship:{tid}", tid, "w1", args))
            await self.send([o for o in outgoing if o[0] not in self.confirmed])
            if len(rows) == n and all(returned(r["state"]) for r in rows):
                return
            await asyncio.sleep(0.1)


def returned(state: dict[str, Any]) -> bool:
    """The warehouse's result is back with the first handler."""
    return bool(state["handoffs"]) and state["handoffs"][0]["result"] is not None


@contextlib.asynccontextmanager
async def workers(settings: Settings, log_dir: Path) -> AsyncIterator[list[WorkerProcess]]:
    started = [
        WorkerProcess(
            role,
            settings,
            log_path=log_dir / f"{role}.log",
            env={"TICKETQ_CLOCK_START": T0.isoformat()},  # staffed hours: a1 is on shift
        )
        for role in ROLES
    ]
    try:
        yield started
    finally:
        for worker in started:
            if worker.proc.poll() is None:
                await worker.stop()


@dataclass
class Trip:
    """What a run of the load across a node's death measured."""

    logs: list[list[dict[str, Any]]]  # each worker's, in ROLES order
    shipped_before: int  # when the node was killed
    leaders_after: float  # s from the kill until rabbitmqctl shows the queues led elsewhere
    workers_after: float  # ... and the workers connected elsewhere (polled ~1 s apart)
    longest_pause: float  # s, the longest time between two shipments
    elapsed: float  # s for the whole load
    unconfirmed_rounds: int

    def outages(self, role: str) -> list[dict[str, Any]]:
        lines = self.logs[ROLES.index(role)]
        return [
            line
            for line in lines
            if line.get("dependency") == "broker" and line["event"].startswith("outage_")
        ]


async def trip_across_a_death(
    cluster: Cluster,
    database_url: str,
    log_dir: Path,
    *,
    vhost: str,
    leaders: str,
    home: str,
    victim: str,
) -> Trip:
    """TICKETS tickets driven through their handoffs by workers connected to `home` (its URL
    first), the queues declared through `leaders` (so led from there), `victim` killed once
    a third has shipped. Asserts the counts; returns the logs and figures."""
    await asyncio.to_thread(cluster.start)  # all three up (a node killed before rejoins)
    await asyncio.to_thread(cluster.add_vhost, vhost)
    order = [home, *(n for n in NODES if n != home)]
    url = ",".join(cluster.node_url(n, vhost) for n in order)
    settings = Settings(
        amqp_url=url, database_url=database_url, relay_idle_poll=0.05, db_pool_size=4
    )
    declaring = await amqp.connect(cluster.node_url(leaders, vhost), name="declare")
    async with declaring:
        await declare_topology(await declaring.channel(), settings, CATALOGUE.queue_names)
    survivor = next(n for n in NODES if n != victim)
    queues = await asyncio.to_thread(cluster.queues, survivor, vhost)
    members = sorted(cluster.name(node) for node in NODES)
    for name in CATALOGUE.queue_names:
        for queue in (name, dead_letter_queue(name)):
            assert queues[queue]["type"] == "quorum"
            assert sorted(queues[queue]["members"]) == members, queue
            assert queues[queue]["leader"] == cluster.name(leaders), queue

    db = await create_pool(settings, size=2)
    connection = await amqp.connect_robust(url, name="load")
    try:
        await add_roster(db)
        async with workers(settings, log_dir) as started:

            async def connected(to: Sequence[str]) -> bool:
                on = await asyncio.to_thread(cluster.connections, survivor, vhost)
                ports = {cluster.port(n) for n in to}
                return all(w.alive() for w in started) and all(on.get(r) in ports for r in ROLES)

            await wait_until(lambda: connected([home]), timeout=60, what=f"workers on {home}")
            tokens = {agent: await token_for(settings, agent) for agent in ("a1", "w1")}
            driver = Driver(settings, db, connection, tokens)
            t0 = time.monotonic()
            load = asyncio.create_task(driver.run(TICKETS))

            async def shipped(at_least: int) -> bool:
                assert not load.done() or load.exception() is None
                return bool(await db.fetchval("SELECT count(*) FROM shipments") >= at_least)

            await wait_until(lambda: shipped(TICKETS // 3), timeout=90, what="a third shipped")
            before = int(await db.fetchval("SELECT count(*) FROM shipments"))
            killed = time.monotonic()
            cluster.kill(victim)
            alive = [n for n in NODES if n != victim]

            async def led_elsewhere() -> bool:
                led = await asyncio.to_thread(cluster.queues, survivor, vhost)
                # Just after the kill a survivor may not list every queue yet: not led yet.
                return all(q in led and led[q]["leader"] != cluster.name(victim) for q in ROLES)

            await wait_until(led_elsewhere, timeout=60, what="new leaders")
            leaders_after = time.monotonic() - killed
            await wait_until(lambda: connected(alive), timeout=60, what=f"workers on {alive}")
            workers_after = time.monotonic() - killed
            await asyncio.wait_for(load, 150)
            elapsed = time.monotonic() - t0

            async def drained() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM outbox") == 0)

            await wait_until(drained, what="the outboxes drained")
            pids = [w.proc.pid for w in started]
        assert [w.proc.returncode for w in started] == [0, 0, 0]
        assert [w.proc.pid for w in started] == pids  # the same processes all along

        counts = {
            "tickets": await db.fetchval("SELECT count(*) FROM tickets"),
            "contacts": await db.fetchval("SELECT count(*) FROM ticket_contacts"),
            "shipments": await db.fetchval("SELECT count(*) FROM shipments"),
            "shipped tickets": await db.fetchval("SELECT count(DISTINCT ticket_id) FROM shipments"),
            "outbox": await db.fetchval("SELECT count(*) FROM outbox"),
        }
        assert counts == {
            "tickets": TICKETS,
            "contacts": TICKETS,
            "shipments": TICKETS,
            "shipped tickets": TICKETS,
            "outbox": 0,
        }
        history = Counter(r["action"] for r in await db.fetch("SELECT action FROM ticket_history"))
        assert history == {
            action: TICKETS for action in ("opened", "assigned", "handed_off", "result_recorded")
        }
        channel = await connection.channel()
        for name in CATALOGUE.queue_names:
            assert (await queue_stats(channel, dead_letter_queue(name)))[0] == 0, name
            if name in ROLES:
                assert (await queue_stats(channel, name))[0] == 0, name
        return Trip(
            [w.lines() for w in started],
            before,
            leaders_after,
            workers_after,
            float(
                await db.fetchval(
                    """SELECT extract(epoch FROM max(gap)) FROM
                       (SELECT at - lag(at) OVER (ORDER BY at) AS gap FROM shipments) g"""
                )
            ),
            elapsed,
            driver.unconfirmed_rounds,
        )
    finally:
        await connection.close()
        await db.close()


async def test_the_workers_node_killed_under_load_loses_nothing_and_does_nothing_twice(
    cluster: Cluster, database_url: str, tmp_path: Path
) -> None:
    """Node a is the workers' node and leads every queue: both go at once."""
    trip = await trip_across_a_death(
        cluster, database_url, tmp_path, vhost="node-loss", leaders="a", home="a", victim="a"
    )
    # Each worker lost its broker once and got it back by itself, on b or c.
    recovered = {}
    for role in ROLES:
        started, ended = trip.outages(role)
        assert (started["event"], ended["event"]) == ("outage_started", "outage_ended"), role
        recovered[role] = ended["seconds"]
    report(cluster, "workers' node and leader", trip, recovered)


async def test_the_leaders_node_killed_under_load_is_no_outage_for_the_workers(
    cluster: Cluster, database_url: str, tmp_path: Path
) -> None:
    """Node c leads every queue, the workers are connected to a: the queues elect new leaders
    on a or b while the workers keep their connections and consumers."""
    trip = await trip_across_a_death(
        cluster, database_url, tmp_path, vhost="leader-loss", leaders="c", home="a", victim="c"
    )
    assert [trip.outages(role) for role in ROLES] == [[], [], []]
    report(cluster, "leader only", trip, {})


def report(cluster: Cluster, what: str, trip: Trip, recovered: dict[str, float]) -> None:
    print(
        f"\n[{what}] cluster started in {cluster.started_in:.1f}s; {TICKETS} tickets with "
        f"handoffs in {trip.elapsed:.1f}s; killed after {trip.shipped_before} shipments; "
        f"new leaders after {trip.leaders_after:.1f}s, workers off it after "
        f"{trip.workers_after:.1f}s (rabbitmqctl), longest pause between two shipments "
        f"{trip.longest_pause:.1f}s; worker "
        f"outages (s) {recovered}; {trip.unconfirmed_rounds} publish rounds unconfirmed"
    )


async def test_the_publishers_node_killed_mid_publish_makes_each_ticket_once(
    cluster: Cluster, database_url: str
) -> None:
    """The upstream client (`TicketPublisher`, given the three URLs, node a first) loses its
    node mid-publish: every call still returns once its contacts are confirmed, on b or c,
    and each contact is one ticket. Intake is connected to b, which leads the queues."""
    vhost = "publisher-loss"
    await asyncio.to_thread(cluster.start)
    await asyncio.to_thread(cluster.add_vhost, vhost)
    settings = Settings(
        amqp_url=",".join(cluster.node_url(n, vhost) for n in ("b", "c", "a")),
        database_url=database_url,
        relay_idle_poll=0.05,
        db_pool_size=4,
    )
    declaring = await amqp.connect(cluster.node_url("b", vhost), name="declare")
    async with declaring:
        await declare_topology(await declaring.channel(), settings, CATALOGUE.queue_names)
    published: list[str] = []
    all_published, looked = asyncio.Event(), asyncio.Event()

    async def publish() -> None:
        urls = ",".join(cluster.node_url(n, vhost) for n in NODES)
        async with TicketPublisher(urls, producer="upstream") as publisher:
            for b in range(40):
                contacts = [contact(f"up-{b}-{i}") for i in range(10)]
                published.extend(await publisher.publish_many(contacts))
                await asyncio.sleep(0.25)  # an upstream's steady flow: ~10 s in all
            all_published.set()
            await looked.wait()  # connected until the test saw where

    db = await create_pool(settings, size=2)
    try:
        async with running(INTAKE, settings):
            load = asyncio.create_task(publish())

            async def some_published() -> bool:
                assert not load.done() or load.exception() is None
                return len(published) >= 30

            await wait_until(some_published, timeout=60, what="30 contacts published")
            on = await asyncio.to_thread(cluster.connections, "b", vhost)
            assert on["upstream"] == cluster.port("a")
            cluster.kill("a")
            await asyncio.wait_for(all_published.wait(), 150)
            on = await asyncio.to_thread(cluster.connections, "b", vhost)
            looked.set()
            await load
            assert on["upstream"] in {cluster.port("b"), cluster.port("c")}

            async def created() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM tickets") == 400)

            await wait_until(created, timeout=60, what="400 tickets")
        assert len(set(published)) == 400
        assert await db.fetchval("SELECT count(*) FROM ticket_contacts") == 400
        connection = await amqp.connect(cluster.node_url("b", vhost), name="check")
        async with connection:
            channel = await connection.channel()
            assert (await queue_stats(channel, dead_letter_queue("intake")))[0] == 0
    finally:
        await db.close()
