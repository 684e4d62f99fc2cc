"""Test helpers: sample contacts, queue inspection, workers in-process and as processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import ValidationError

from services.catalogue import CATALOGUE
from services.finance.contracts import FinanceOperation
from services.intake.client import publish_raw
from services.intake.contracts import SubmitTicket
from services.warehouse.contracts import WarehouseOperation
from shared.agents.identity import open_session
from shared.bootstrap import Service, start_service
from shared.config import Settings
from shared.db import Pool
from shared.messaging.envelope import Contract, Envelope
from shared.messaging.topology import queue_stats
from shared.tickets.contracts import Channel, Customer, OnTicket, Order, TicketCommand

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def contact(
    external_id: str,
    *,
    source: str = "im-gateway",
    subject: str = "这个有货吗?",
    text: str = "",
    order_id: str | None = None,
    paid: bool = True,
    shipped: bool = False,
    **fields: Any,
) -> SubmitTicket:
    order = None
    if order_id is not None:
        order = Order(
            id=order_id,
            amount=Decimal("59.00"),
            placed_at=T0 - timedelta(days=3),
            paid_at=T0 - timedelta(days=3) if paid else None,
            shipped_at=T0 - timedelta(days=2) if shipped else None,
        )
    return SubmitTicket(
        source=source,
        external_id=external_id,
        channel=fields.pop("channel", Channel.WANGWANG),
        customer=fields.pop("customer", Customer(id="c-1", nick="小王")),
        order=order,
        subject=subject,
        text=text,
        occurred_at=T0,
        **fields,
    )


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def depth(channel: AbstractChannel, queue: str) -> int:
    return (await queue_stats(channel, queue))[0]


async def take_all(channel: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    """Every message now in `queue`, removed (acked)."""
    q = await channel.get_queue(queue)
    taken = []
    while (message := await q.get(fail=False, no_ack=True)) is not None:
        taken.append(message)
    return taken


def body(message: AbstractIncomingMessage) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(message.body)
    return decoded


@asynccontextmanager
async def running(service: Service, settings: Settings) -> AsyncIterator[None]:
    """A worker in this process, stopped cleanly at the end."""
    handle = await start_service(service, settings)
    try:
        yield
    finally:
        await handle.stop()


class WorkerProcess:
    """A worker as a real OS process (`ticketq worker NAME`), for crash tests and replicas.

    It gets *every* field of `settings` (a worker declaring the topology with another delivery
    limit than the test's would be refused by the broker: queue arguments differ).
    """

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        failpoints: str = "",
        log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        env = {
            **os.environ,
            **settings_env(settings),
            **(env or {}),
            "TICKETQ_FAILPOINTS": failpoints,
        }
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli.main", "worker", name],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_exit(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.proc.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker did not exit; log:\n{self.log()}")
            await asyncio.sleep(0.05)
        return code

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await self.wait_exit()
        self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True while it runs; an AssertionError with its log if it died."""
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}; log:\n{self.log()}")
        return True

    def lines(self) -> list[dict[str, Any]]:
        """The log as JSON objects; fails on a line that is not JSON."""
        return json_lines(self.log())


# --- Worker processes configured from every setting, their logs, and logs in-process ---


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as the `TICKETQ_*` variable a worker process reads it from (unset: None)."""
    return {
        f"TICKETQ_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
        for key, value in settings.model_dump(mode="json").items()
        if value is not None
    }


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            decoded = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"log line {number} is not JSON: {line[:300]!r}") from exc
        assert isinstance(decoded, dict), f"log line {number} is not an object: {line[:300]!r}"
        lines.append(decoded)
    return lines


def handled(lines: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The runtime's one line per delivery."""
    return [line for line in lines if line.get("event") == "message_handled"]


class WorkerProcesses:
    """Starts worker processes with their logs under `log_dir`; `close` stops all still alive."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[WorkerProcess] = []

    def start(self, name: str, settings: Settings, *, failpoints: str = "") -> WorkerProcess:
        log_path = self.log_dir / f"{name}-{len(self.started) + 1}.log"
        worker = WorkerProcess(name, settings, failpoints=failpoints, log_path=log_path)
        self.started.append(worker)
        return worker

    async def close(self) -> None:
        # One SIGTERM each: a second one could land after the worker removed its handler on
        # the way out, and kill it (exit -15) instead of letting it finish.
        for worker in self.started:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in self.started:
            try:
                await worker.wait_exit()
            except AssertionError:
                worker.proc.kill()
                worker.proc.wait()
            worker._log.close()


@asynccontextmanager
async def captured_logs(level: str = "debug") -> AsyncIterator[list[MutableMapping[str, Any]]]:
    """The event dicts this process logs meanwhile (context variables merged), at `level`."""
    previous = structlog.get_config()
    captured = structlog.testing.LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, captured],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
    )
    try:
        yield captured.entries
    finally:
        structlog.configure(**previous)


def command_for(
    ticket_id: str, actor: str, args: Contract, *, version: int | None = None
) -> OnTicket:
    """The message that carries `args`: a ticket command, or its role's operation."""
    for message_type in (TicketCommand, WarehouseOperation, FinanceOperation):
        try:
            return message_type.model_validate(
                {
                    "ticket_id": ticket_id,
                    "actor_id": actor,
                    "expected_version": version,
                    "args": args,
                }
            )
        except ValidationError:
            continue
    raise TypeError(f"no command carries {type(args).__name__}")


async def add_agents(db: Pool, agents: Sequence[tuple[str, str, list[str], list[str]]]) -> None:
    """Put agents (id, name, roles, shifts) on the roster, online."""
    await db.executemany(
        "INSERT INTO agents (id, name, roles, shifts, online) VALUES ($1, $2, $3, $4, true)",
        agents,
    )


# A test's sessions outlast any clock a test moves: the expiry tests mint their own.
TEST_SESSION = timedelta(days=3650)


async def token_for(
    settings: Settings, agent_id: str, *, at: datetime = T0, ttl: timedelta = TEST_SESSION
) -> str:
    """A session token for an agent on the roster, minted in the store (no password, no
    sign-in round trip): what a test's commands carry."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        roles = await conn.fetchval("SELECT roles FROM agents WHERE id = $1", agent_id)
        if roles is None:
            raise LookupError(f"no agent {agent_id!r} on the roster: add it first")
        token, _ = await open_session(conn, agent_id, list(roles), at, ttl)
        return token
    finally:
        await conn.close()


async def publish_events(settings: Settings, *events: Contract, producer: str = "upstream") -> None:
    """As an upstream system would (order centre, the platform): envelopes to exchange
    `ticketq`, each to the queue the catalogue names for its type."""
    for event in events:
        body = Envelope.wrap(event, producer=producer).model_dump(mode="json")
        await publish_raw(settings.amqp_url, [body], queue=CATALOGUE.of(type(event)).queues[0])
