"""Wires one worker process: settings, logging, pool, broker, topology, runtime and relay."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import ChannelNotFoundEntity
from prometheus_client.exposition import ThreadingWSGIServer

from shared.clock import Clock, clock_from_env
from shared.config import Settings, get_settings
from shared.db import Pool, create_pool
from shared.dependencies import (
    BROKER_QUIET,
    BROKER_SIGNALS,
    DATABASE_SIGNALS,
    BrokerProbe,
    DatabaseProbe,
    Dependency,
    outages_from,
    watch_connection,
)
from shared.logging import configure_logging
from shared.messaging import topology as messaging
from shared.messaging.catalogue import Catalogue
from shared.messaging.envelope import Contract
from shared.messaging.outbox import OutboxRelay
from shared.messaging.runtime import Handler, Route, Worker
from shared.observability import Readiness, sample_forever, serve
from shared.timers import FireHandler, TimerLoop

log = structlog.get_logger(__name__)


Background = Callable[[Pool, Clock], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Service:
    """A worker: a handler per message type (keyed by contract) for the queues the catalogue
    says it consumes, and any background loops it runs beside them.

    Built against the catalogue: a type one of its queues takes without a handler here, or a
    handler for a type none of its queues takes, is refused at once (drift, not a runtime
    surprise).
    """

    name: str
    catalogue: Catalogue
    handlers: Mapping[type[Contract], Handler]
    background: tuple[Background, ...] = ()
    # Timer kinds this worker fires (`shared.timers`): a loop in every replica, whose firings
    # wake this worker's outbox relay.
    timers: Mapping[str, FireHandler] = field(default_factory=dict)
    routes: Mapping[str, Mapping[str, Route]] = field(init=False)

    def __post_init__(self) -> None:
        queues = self.catalogue.queues_of(self.name)
        if not queues:
            raise ValueError(f"the catalogue gives {self.name!r} no queue to consume")
        routes = {
            queue: {kind.name: kind for kind in self.catalogue.accepted(queue)} for queue in queues
        }
        taken = {kind.model for by_name in routes.values() for kind in by_name.values()}
        if missing := sorted(m.TYPE for m in taken - set(self.handlers)):
            raise ValueError(f"{self.name}: no handler for {', '.join(missing)}")
        if extra := sorted(m.TYPE for m in set(self.handlers) - taken):
            raise ValueError(f"{self.name}: none of its queues takes {', '.join(extra)}")
        object.__setattr__(
            self,
            "routes",
            {
                queue: {
                    name: Route(kind, self.handlers[kind.model]) for name, kind in by_name.items()
                }
                for queue, by_name in routes.items()
            },
        )

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(self.routes)


STOP_GRACE = 10.0  # seconds a stopping service waits for its loops and its pool


@dataclass
class RunningService:
    service: Service
    pool: Pool
    connection: AbstractRobustConnection
    workers: list[Worker]
    relay: OutboxRelay
    readiness: Readiness
    tasks: list[asyncio.Task[None]]
    http: ThreadingWSGIServer | None
    closing: tuple[Callable[[], Coroutine[Any, Any, None]], ...]  # the dependencies' watchers
    quieting: tuple[Callable[[], None], ...]
    timer_loop: TimerLoop | None = None

    @property
    def metrics_port(self) -> int | None:
        return self.http.server_port if self.http else None

    async def stop(self) -> None:
        """Stop consuming, finish what is in hand, publish what it committed, close."""
        for worker in self.workers:
            await worker.stop()
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            # A stop never hangs on a loop that does not end when cancelled: it is named.
            _, stuck = await asyncio.wait(self.tasks, timeout=STOP_GRACE)
            if stuck:
                log.error("stop_tasks_stuck", tasks=sorted(t.get_name() for t in stuck))
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        with contextlib.suppress(Exception):  # whatever is left, any relay publishes later
            while await self.relay.publish_batch():
                pass
        for close in self.closing:
            await close()
        for undo in self.quieting:
            undo()
        try:
            await asyncio.wait_for(self.connection.close(), STOP_GRACE)
        except TimeoutError:
            log.error("stop_broker_close_stuck")
        try:  # waits for every connection to be released: bounded, like the tasks
            await asyncio.wait_for(self.pool.close(), STOP_GRACE)
        except TimeoutError:
            log.error("stop_pool_stuck")
            self.pool.terminate()
        log.info("service_stopped")


async def _check_topology(connection: AbstractRobustConnection, service: Service) -> None:
    """Its queues and the exchanges it publishes to exist (passive declares, which need no
    permission): `ticketq setup` declares the topology, with rights a worker does not have (run
    it again after an upgrade that adds to it, as `ticketq.replies` was added)."""
    exchanges = (messaging.EXCHANGE, messaging.DEAD_LETTER_EXCHANGE, messaging.REPLY_EXCHANGE)
    wanted = [("queue", q) for q in service.queues] + [("exchange", x) for x in exchanges]
    for kind, name in wanted:
        channel = await connection.channel()  # a failed passive declare closes its channel
        try:
            if kind == "queue":
                await messaging.queue_stats(channel, name)
            else:
                await channel.declare_exchange(name, passive=True)
        except ChannelNotFoundEntity:
            raise RuntimeError(
                f"{service.name}: the broker has no {kind} {name!r}: run `ticketq setup` first"
            ) from None
        await channel.close()


async def start_service(
    service: Service, settings: Settings, *, clock: Clock | None = None
) -> RunningService:
    clock = clock or clock_from_env()
    async with contextlib.AsyncExitStack() as opened:  # closed again if start-up fails
        pool = await create_pool(settings)
        opened.push_async_callback(pool.close)
        connection = await messaging.connect(settings, name=service.name)
        opened.push_async_callback(connection.close)
        await _check_topology(connection, service)
        database_probe = DatabaseProbe(settings.database_url)
        opened.push_async_callback(database_probe.close)
        database = Dependency("database", database_probe)
        opened.push_async_callback(database.close)
        broker = Dependency("broker", BrokerProbe(connection, service.queues[0]))
        opened.push_async_callback(broker.close)
        watch_connection(connection, broker)
        quieting = (
            outages_from(database, signals=DATABASE_SIGNALS),
            outages_from(broker, signals=BROKER_SIGNALS, quiet=BROKER_QUIET),
        )
        for undo in quieting:
            opened.callback(undo)
        relay = OutboxRelay(
            pool=pool,
            channel=await connection.channel(on_return_raises=True),
            settings=settings,
            database=database,
            broker=broker,
        )
        workers = [
            Worker(
                service=service.name,
                queue=queue,
                routes=routes,
                settings=settings,
                pool=pool,
                channel=await connection.channel(on_return_raises=True),
                database=database,
                on_commit=relay.notify,
                clock=clock,
            )
            for queue, routes in service.routes.items()
        ]
        readiness = Readiness()
        http = None
        if settings.metrics_port is not None:
            http = serve(readiness, settings.metrics_host, settings.metrics_port)
            opened.callback(http.server_close)
            opened.callback(http.shutdown)
        for worker in workers:
            await worker.start()
        opened.pop_all()  # from here on, RunningService.stop closes them
    tasks = [
        asyncio.create_task(relay.run(), name=f"{service.name}-outbox-relay"),
        asyncio.create_task(
            sample_forever(
                readiness,
                database=database,
                broker=broker,
                connection=connection,
                pool=pool,
                queues=service.queues,
                is_consuming=lambda: all(w.is_consuming for w in workers),
                relay_running=lambda: relay.running,
            ),
            name=f"{service.name}-sampler",
        ),
        *(asyncio.create_task(loop(pool, clock)) for loop in service.background),
    ]
    timer_loop = None
    if service.timers:
        timer_loop = TimerLoop(
            service.timers, database_url=settings.database_url, on_commit=relay.notify
        )
        tasks.append(
            asyncio.create_task(timer_loop.run(pool, clock), name=f"{service.name}-timers")
        )
    log.info("service_started", metrics_port=http.server_port if http else None)
    return RunningService(
        service,
        pool,
        connection,
        workers,
        relay,
        readiness,
        tasks,
        http,
        closing=(database.close, broker.close, database_probe.close),
        quieting=quieting,
        timer_loop=timer_loop,
    )


async def run_service(service: Service, settings: Settings | None = None) -> None:
    """Run until SIGTERM/SIGINT, with the service's own credentials (`Settings.for_service`)."""
    settings = settings or get_settings().for_service(service.name)
    configure_logging(settings.log_level, service=service.name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = await start_service(service, settings)
    await stop.wait()
    log.info("service_stopping")
    await running.stop()
