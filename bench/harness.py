"""What every benchmark needs: servers of the run's own, and worker processes to measure."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from services.catalogue import CATALOGUE
from shared.config import Settings, without_own_urls
from shared.db import migrate
from shared.messaging import topology as messaging

_HZ = os.sysconf("SC_CLK_TCK")


# Where a message's CPU goes, by process: RabbitMQ, PostgreSQL, and the Python clients (the
# workers, the publisher and the bench itself), named as `pipeline_limit.py` reports them.
PROCESS_GROUPS = {"beam.smp": "broker", "postgres": "database", "python": "clients"}


def cost_by_group(machine_ms: float, processes: Iterable[tuple[str, float]]) -> dict[str, float]:
    """A message's CPU milliseconds: the machine's (`cpu_ms`), each process group's (from the
    milliseconds of each process name, `python3.11` too) and the rest (`rest_cpu_ms`: the
    kernel's own work and every other process)."""
    groups = dict.fromkeys(PROCESS_GROUPS.values(), 0.0)
    for comm, ms in processes:
        if group := next((g for n, g in PROCESS_GROUPS.items() if comm.startswith(n)), None):
            groups[group] += ms
    return {
        "cpu_ms": machine_ms,
        **{f"{g}_cpu_ms": ms for g, ms in groups.items()},
        "rest_cpu_ms": machine_ms - sum(groups.values()),
    }


@dataclass(frozen=True)
class CpuSnapshot:
    """The machine's busy CPU seconds since boot, counted as `pipeline_limit.py` counts them
    (all but idle and iowait), and each live process's CPU seconds."""

    machine: float
    # (pid, start time) -> (name, CPU seconds): a pid reused meanwhile is another process,
    # and a kernel worker's name changes with its work, so the name cannot say.
    processes: dict[tuple[int, int], tuple[str, float]]

    @classmethod
    def take(cls) -> CpuSnapshot:
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
        processes: dict[tuple[int, int], tuple[str, float]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    text = f.read()
            except OSError:
                continue  # gone meanwhile
            # The name is in parentheses and may hold spaces; utime, stime and the start time
            # are the 14th, 15th and 22nd fields (proc(5)).
            comm, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :]
            fields = rest.split()
            key = (int(entry.name), int(fields[19]))
            processes[key] = (comm, (int(fields[11]) + int(fields[12])) / _HZ)
        return cls((sum(ticks) - ticks[3] - ticks[4]) / _HZ, processes)

    def per_message(self, later: CpuSnapshot, n: int) -> dict[str, float]:
        """CPU milliseconds per message from this snapshot to `later` (`cost_by_group`; a
        process started meanwhile counts whole)."""
        return cost_by_group(
            1000 * (later.machine - self.machine) / n,
            (
                (comm, 1000 * (seconds - self.processes.get(key, (comm, 0.0))[1]) / n)
                for key, (comm, seconds) in later.processes.items()
            ),
        )


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
