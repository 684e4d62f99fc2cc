"""One connect function for one node or a cluster: several URLs, tried in turn, and a robust
connection that moves to the next node when its node goes away. Against the shared node,
each "node" being a TCP proxy of its own in front of it (cut = the node died)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from shared.messaging.amqp import ClusterConnection, broker_urls, connect, connect_robust, where
from tests.tcp_proxy import TcpProxy, free_port


def test_a_url_may_list_several_nodes_and_their_places_never_show_credentials() -> None:
    url = "amqps://u:p1@mq-1:5671/tq, amqps://u:p2@mq-2:5671/tq,"
    assert broker_urls(url) == ("amqps://u:p1@mq-1:5671/tq", "amqps://u:p2@mq-2:5671/tq")
    assert where(url) == "mq-1:5671/tq, mq-2:5671/tq"
    assert broker_urls("amqp://u:p@h/v") == ("amqp://u:p@h/v",)
    hosts = "amqps://u:p@mq-1,mq-2:5673, mq-3/tq?cafile=/ca.pem"
    assert broker_urls(hosts) == (
        "amqps://u:p@mq-1/tq?cafile=/ca.pem",
        "amqps://u:p@mq-2:5673/tq?cafile=/ca.pem",
        "amqps://u:p@mq-3/tq?cafile=/ca.pem",
    )
    assert broker_urls(f"{hosts},amqp://v:q@mq-9/x") == (*broker_urls(hosts), "amqp://v:q@mq-9/x")
    assert (
        where(hosts)
        == "mq-1/tq?cafile=/ca.pem, mq-2:5673/tq?cafile=/ca.pem, mq-3/tq?cafile=/ca.pem"
    )
    with pytest.raises(ValueError, match="no RabbitMQ URL"):
        broker_urls(" , ")


def nowhere(url: str) -> str:
    """`url` pointing at a loopback port nobody listens on (a node that is down)."""
    return TcpProxy(url).url(url)


@pytest.fixture
async def nodes(amqp_url: str) -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    proxies = (TcpProxy(amqp_url), TcpProxy(amqp_url))
    for proxy in proxies:
        await proxy.restore()
    yield proxies
    for proxy in proxies:
        await proxy.close()


async def test_the_first_node_that_answers_is_taken_and_none_answering_raises(
    amqp_url: str,
) -> None:
    down = nowhere(amqp_url)
    for open_one in (connect, connect_robust):
        connection = await open_one(f"{down},{amqp_url}", name="t")
        await connection.close()
        with pytest.raises(ConnectionError):
            await open_one(f"{down},{nowhere(amqp_url)}", name="t")


async def test_a_robust_connection_moves_to_the_next_node_and_consumes_there(
    amqp_url: str, nodes: tuple[TcpProxy, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = nodes
    connection = await connect_robust(f"{a.url(amqp_url)},{b.url(amqp_url)}", name="t")
    assert isinstance(connection, ClusterConnection)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"failover-{free_port()}", auto_delete=True)
        received: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_message(message: AbstractIncomingMessage) -> None:
            await message.ack()
            await received.put(message.body)

        await queue.consume(on_message)
        for cut, now_at, body in ((a, b, b"on b"), (b, a, b"on a again")):
            t0 = time.monotonic()
            await cut.cut()
            while connection.url.port != now_at.port or not connection.connected.is_set():
                assert time.monotonic() - t0 < 15, "no reconnect within 15 s"
                await asyncio.sleep(0.05)
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
            assert await asyncio.wait_for(received.get(), 10) == body
            await cut.restore()
        # Straight to the next node each time: no attempt went to the node that was cut.
        failed = [r for r in caplog.records if str(r.msg).startswith("Connection attempt")]
        assert failed == []
    finally:
        await connection.close()
