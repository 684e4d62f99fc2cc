"""Connecting to RabbitMQ: one node, or whichever node of a cluster answers.

`TICKETQ_AMQP_URL` names one broker, or the nodes of a cluster: URLs separated by commas
(`amqps://u:p@mq-1:5671/ticketq,amqps://u:p@mq-2:5671/ticketq`), or one URL with several
hosts (`amqps://u:p@mq-1:5671,mq-2:5671,mq-3:5671/ticketq`). A client talks to one node
at a time, and any node of a cluster serves every queue (a quorum queue's leader may live on
another node). Every process connects through here: `connect_robust` for workers and
publishers, `connect` for one-shot tools (the CLI's requests, the DLQ tool, reports).

aio-pika's robust connection reconnects to its one URL only (mosquito/aio-pika#141, still
open): `ClusterConnection` moves to the next URL whenever its connection drops or an attempt
fails, so a worker whose node dies carries on at another node, where its robust channels
declare and consume again. The options of the URL query (heartbeat, TLS files) are the
first URL's; the nodes are tried in the order given.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from yarl import URL

# The step of aio-pika's reconnect loop that makes one attempt with `self.url` (a private
# name: no public hook runs before each attempt). aio-pika is pinned in requirements.lock;
# should a new version rename the step, this fails at import rather than in an outage.
_ATTEMPT = "_RobustConnection__connect_transport"
if not callable(getattr(RobustConnection, _ATTEMPT, None)):  # pragma: no cover
    raise ImportError(f"aio-pika's RobustConnection has no {_ATTEMPT}: review ClusterConnection")


# A comma before another `scheme://` starts the next URL; other commas separate the hosts of
# one URL (`amqp://u:p@mq-1,mq-2:5673/vhost`, as libpq and MongoDB URIs allow).
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")
_HOSTS = re.compile(r"(?P<head>[^:/]+://(?:[^@/]*@)?)(?P<hosts>[^/?#]*)(?P<tail>.*)")


def broker_urls(url: str) -> tuple[str, ...]:
    """One URL per node of a `TICKETQ_AMQP_URL`: a URL, several separated by commas, or one
    URL whose host part lists several `host[:port]` separated by commas."""
    urls: list[str] = []
    for part in _NEXT_URL.split(url):
        part = part.strip().strip(",").strip()
        parsed = _HOSTS.fullmatch(part)
        if parsed is None or "," not in parsed["hosts"]:
            urls += [part] if part else []
            continue
        hosts = [host.strip() for host in parsed["hosts"].split(",") if host.strip()]
        urls += [f"{parsed['head']}{host}{parsed['tail']}" for host in hosts]
    if not urls:
        raise ValueError("no RabbitMQ URL given")
    return tuple(urls)


def where(url: str) -> str:
    """Host, port and vhost of each URL, never the credentials."""
    return ", ".join(part.rsplit("@", 1)[-1] for part in broker_urls(url))


class ClusterConnection(RobustConnection):
    """A robust connection over a list of nodes: after a drop or a failed attempt, the next
    attempt goes to the next node (round robin), not again to the one that went away."""

    def __init__(self, urls: Sequence[URL], **kwargs: Any) -> None:
        super().__init__(urls[0], **kwargs)
        self.urls = tuple(urls)
        self._current = 0

    def _leave(self, index: int) -> None:
        # Idempotent per node: a drop and the failed attempt it ends with move on once.
        if index == self._current:
            self._current = (index + 1) % len(self.urls)
            self.url = self.urls[self._current]

    async def _RobustConnection__connect_transport(self) -> None:
        attempt = getattr(super(), _ATTEMPT)
        index = self._current
        try:
            await attempt()
        except BaseException:
            self._leave(index)
            raise

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        index, dropped = self._current, not self.close_called
        await super()._on_connection_close(closing)
        if dropped:
            self._leave(index)


async def connect_robust(
    url: str, *, name: str, node_timeout: float | None = None
) -> AbstractRobustConnection:
    """A connection that outlives its node: to the first of `url`'s nodes that answers (each
    tried once; the last error if none does), then reconnecting by itself, node after node."""
    urls = [URL(u) for u in broker_urls(url)]
    failure: BaseException | None = None
    for start in range(len(urls)):
        connection = ClusterConnection(
            urls[start:] + urls[:start], client_properties={"connection_name": name}
        )
        try:
            await connection.connect(timeout=node_timeout)
        except CONNECTION_EXCEPTIONS as exc:
            failure = exc
            await connection.close()
            continue
        return connection
    assert failure is not None
    raise failure


async def connect(url: str, *, name: str, node_timeout: float | None = None) -> AbstractConnection:
    """A plain connection (gone with its node) to the first of `url`'s nodes that answers."""
    failure: BaseException | None = None
    for node in broker_urls(url):
        try:
            return await aio_pika.connect(
                node, timeout=node_timeout, client_properties={"connection_name": name}
            )
        except CONNECTION_EXCEPTIONS as exc:
            failure = exc
    assert failure is not None
    raise failure
