"""What every benchmark needs: servers of the run's own, and worker processes to measure."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from services.catalogue import CATALOGUE
from shared.config import Settings, without_own_urls
from shared.db import migrate
from shared.messaging import topology as messaging

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine (every core, every process, the servers included) has
    been busy since boot: what `pipeline_limit.py` counts as busy (all but idle and iowait),
    so that the CPU one message costs compares with its figure."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS_PER_SECOND


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + path))


def _rabbitmqctl(*args: str) -> None:
    ctl = os.environ["TICKETQ_RABBITMQCTL"]
    subprocess.run([*shlex.split(ctl), *args], check=True, capture_output=True)


async def _admin(base: Settings, sql: str) -> None:
    admin = await asyncpg.connect(base.database_url)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@asynccontextmanager
async def bench_environment(base: Settings, tag: str) -> AsyncIterator[Settings]:
    """A migrated database and (when `TICKETQ_RABBITMQCTL` is set, as `make` sets it) a vhost
    of the run's own, the topology declared; both removed afterwards."""
    vhost = f"ticketq-bench-{tag}"
    ctl = bool(os.environ.get("TICKETQ_RABBITMQCTL"))
    amqp_url = base.amqp_url
    if ctl:
        user = urlsplit(base.amqp_url).username or "guest"
        await asyncio.to_thread(_rabbitmqctl, "add_vhost", vhost)
        await asyncio.to_thread(
            _rabbitmqctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"
        )
        amqp_url = _with_path(base.amqp_url, vhost)
    try:
        async with bench_database(base.model_copy(update={"amqp_url": amqp_url}), tag) as settings:
            yield settings
    finally:
        if ctl:
            await asyncio.to_thread(_rabbitmqctl, "delete_vhost", vhost)


@asynccontextmanager
async def bench_database(base: Settings, tag: str) -> AsyncIterator[Settings]:
    """A migrated database of the run's own, dropped afterwards (no broker needed)."""
    db = f"ticketq_bench_{tag}"
    await _admin(base, f'CREATE DATABASE "{db}"')
    settings = base.model_copy(update={"database_url": _with_path(base.database_url, db)})
    try:
        await migrate(settings.database_url)
        yield settings
    finally:
        # FORCE may not end an autovacuum worker busy on the run's tables (the superuser's):
        # it is done within moments, so the drop is tried again.
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(asyncpg.InsufficientPrivilegeError),
            stop=stop_after_attempt(10),
            wait=wait_fixed(0.5),
            reraise=True,
        ):
            with attempt:
                await _admin(base, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@asynccontextmanager
async def broker_channel(settings: Settings) -> AsyncIterator[AbstractChannel]:
    """A channel on the run's broker, the topology declared."""
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        channel = await connection.channel()
        await messaging.declare_topology(channel, settings, CATALOGUE.queue_names)
        yield channel
    finally:
        await connection.close()


@asynccontextmanager
async def workers(
    name: str,
    settings: Settings,
    replicas: int,
    channel: AbstractChannel,
    *,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """`replicas` processes of worker `name` (`env` added to theirs), consuming before this
    yields them; stopped after."""
    async with worker_processes({name: replicas}, settings, channel, env=env) as procs:
        yield procs


@asynccontextmanager
async def worker_processes(
    replicas: Mapping[str, int],
    settings: Settings,
    channel: AbstractChannel,
    *,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """`replicas[name]` processes of each worker, all started at once (`env` added to
    theirs), every one consuming before this yields them; stopped after."""
    env = {
        **without_own_urls(os.environ),  # the bench's vhost and database, not the shared ones
        "TICKETQ_AMQP_URL": settings.amqp_url,
        "TICKETQ_DATABASE_URL": settings.database_url,
        "TICKETQ_LOG_LEVEL": "warning",
        **(env or {}),
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shared.cli.main", "worker", name, env=env
        )
        for name, count in replicas.items()
        for _ in range(count)
    ]
    try:
        for name, count in replicas.items():
            while (await messaging.queue_stats(channel, name))[1] < count:  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # polling the broker: there is no event to wait on
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await proc.wait()
