"""The servers a worker cannot work without (PostgreSQL, RabbitMQ): is each one answering now?

A `Dependency` is probed (by the readiness sampler every second, and by whoever just failed
against it); its outage is logged once when it starts and once when it ends, however many
calls failed meanwhile, and code that must wait for it (`wait_up`) sleeps until it is back.
An `Episode` is the same once-at-start, once-at-end logging for any repeated failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from shared.messaging.topology import queue_stats

log = structlog.get_logger(__name__)

Probe = Callable[[], Awaitable[None]]

# Just after an outage ends, a client library may still report the fallout of the drop (a
# reconnect attempt that began before, a channel that died with the old connection): a failure
# reported then is checked by a probe before it counts as a new outage.
SETTLE = 2.0


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class Episode:
    """A failure that may repeat many times: logged when it starts and when it ends, only."""

    def __init__(self, event: str, **context: str) -> None:
        self.event = event
        self.context = context
        self.since: float | None = None
        self.count = 0  # how many episodes began, ever

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException, *, traceback: bool = False) -> bool:
        """Note a failure; True if it starts an episode (and was logged)."""
        if self.since is not None:
            return False
        self.since = time.monotonic()
        self.count += 1
        log.warning(
            f"{self.event}_started",
            **self.context,
            error=describe(error),
            exc_info=error if traceback else None,
        )
        return True

    def ended(self) -> bool:
        """Note a success; True if it ends an episode (and was logged)."""
        if self.since is None:
            return False
        seconds = time.monotonic() - self.since
        self.since = None
        log.warning(f"{self.event}_ended", **self.context, seconds=round(seconds, 1))
        return True


class Dependency:
    """A server this process needs, assumed up until a probe or a failure says otherwise."""

    def __init__(self, name: str, probe: Probe, *, timeout: float = 2.0, poll: float = 1.0) -> None:
        self.name = name
        self._probe = probe
        self._timeout = timeout
        self._poll = poll
        self._outage = Episode("outage", dependency=name)
        self._up = asyncio.Event()
        self._up.set()
        self._listeners: list[Callable[[bool], None]] = []
        self._watch: asyncio.Task[None] | None = None
        self._probing: asyncio.Future[bool] | None = None
        self._back_at = float("-inf")  # when the last outage ended (monotonic)
        self._recheck: asyncio.Future[bool] | None = None

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    @property
    def outages(self) -> int:
        """How many outages began: a caller that saw it change knows one happened meanwhile."""
        return self._outage.count

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(is_up)` whenever it goes down or comes back."""
        self._listeners.append(listener)

    async def check(self) -> bool:
        """Probe it now (callers at the same moment share one probe); True if it answered."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(self._probe_once())
        return await asyncio.shield(self._probing)

    async def _probe_once(self) -> bool:
        try:
            await asyncio.wait_for(self._probe(), self._timeout)
        except Exception as exc:
            self.failed(exc, probed=True)
            return False
        if self._outage.ended():
            self._back_at = time.monotonic()
            self._up.set()
            self._notify()
        return True

    def failed(self, error: BaseException, *, probed: bool = False) -> None:
        """It failed us: down until a probe answers again (probed every `poll` seconds).
        Within `SETTLE` of coming back, a reported failure is probed first (`probed`: this is
        the probe's own failure)."""
        if not probed and self.is_up and time.monotonic() - self._back_at < SETTLE:
            if self._recheck is None or self._recheck.done():
                self._recheck = asyncio.ensure_future(self.check())
            return
        if not self._outage.failed(error):
            return
        self._up.clear()
        self._notify()
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._until_up(), name=f"{self.name}-watch")

    async def wait_up(self) -> None:
        await self._up.wait()

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def _until_up(self) -> None:
        while not self.is_up:
            await asyncio.sleep(self._poll)
            await self.check()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self.is_up)


class DatabaseProbe:
    """`SELECT 1` on a connection of its own: a pool busy with handlers is no outage."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None

    async def __call__(self) -> None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self.database_url)
            await self._conn.fetchval("SELECT 1")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None


class BrokerProbe:
    """A passive declare of the worker's queue, on a channel of its own: one round trip."""

    def __init__(self, connection: AbstractRobustConnection, queue: str) -> None:
        self.connection = connection
        self.queue = queue
        self._channel: AbstractChannel | None = None

    async def __call__(self) -> None:
        if self.connection.is_closed:
            raise ConnectionError("the broker connection is closed")
        if self._channel is None or self._channel.is_closed:
            self._channel = await self.connection.channel()
        await queue_stats(self._channel, self.queue)


def watch_connection(connection: AbstractRobustConnection, broker: Dependency) -> None:
    """Mark the broker down the moment the connection drops, not at the next probe."""

    def dropped(_sender: object, exc: BaseException | None = None) -> None:
        if not connection.close_called:  # a close we asked for is no outage
            broker.failed(exc or ConnectionError("the broker connection dropped"))

    connection.close_callbacks.add(dropped)


# Loggers of the client libraries: where a lost connection and each attempt to get it back
# are reported (`signals`), and where the fallout of the drop is (`quiet`: aio-pika's callback
# errors, one per channel, as each finds the connection closed; any other error there shows).
BROKER_SIGNALS = ("aio_pika.robust_connection", "aiormq.connection")
BROKER_QUIET = ("aio_pika.tools",)
DATABASE_SIGNALS = ("asyncpg.pool",)


def outages_from(
    dependency: Dependency, *, signals: tuple[str, ...], quiet: tuple[str, ...] = ()
) -> Callable[[], None]:
    """Take a client library's warnings about its connection (`signals`: the connection lost,
    then one line per reconnect attempt, every few seconds) for what they are, the outage of
    `dependency`, logged once by it rather than line after line; and leave out the records of
    `quiet` while it is down. Returns the undo."""
    filters = [(name, _OutageFromClientLog(dependency, signal=True)) for name in signals] + [
        (name, _OutageFromClientLog(dependency, signal=False)) for name in quiet
    ]
    for name, f in filters:
        logging.getLogger(name).addFilter(f)

    def undo() -> None:
        for name, f in filters:
            logging.getLogger(name).removeFilter(f)

    return undo


class _OutageFromClientLog(logging.Filter):
    def __init__(self, dependency: Dependency, *, signal: bool) -> None:
        super().__init__()
        self.dependency = dependency
        self.signal = signal

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        if not self.dependency.is_up:
            return False
        if not self.signal or record.levelno < logging.WARNING:
            return True
        error = record.exc_info[1] if record.exc_info else None
        try:
            self.dependency.failed(error or ConnectionError(record.getMessage()))
        except RuntimeError:  # logged outside the event loop: let the record through
            return True
        return False
