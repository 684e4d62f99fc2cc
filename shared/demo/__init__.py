"""`ticketq demo`: the whole system locally, fed a realistic sample of contacts.

Applies the migrations, starts the five workers as processes, publishes `tickets.json`
(cases drawn from the seed manuals) and prints what became of each.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aio_pika

from shared import messaging
from shared.client import TicketPublisher, publish_raw
from shared.config import Settings
from shared.db import Pool, create_pool, migrate
from shared.models.tickets import SubmitTicket

T = TypeVar("T")


@dataclass
class Case:
    title: str
    ticket: SubmitTicket | None = None
    raw: dict[str, Any] | None = None
    message_id: str = ""


@dataclass
class Result:
    ticket_id: str
    kind: str
    queue: str
    outcome: str


def load_cases(run: str) -> list[Case]:
    """The fixture's cases, ids tagged with `run` so that every demo run starts afresh."""
    data = json.loads((resources.files("shared.demo") / "tickets.json").read_text("utf-8"))
    cases: list[Case] = []
    for item in data:
        if "republish_of" in item:
            original = cases[item["republish_of"]].ticket
            cases.append(Case(item["case"], ticket=original, message_id=str(uuid.uuid4())))
        elif "raw" in item:
            raw = {**item["raw"], "message_id": f"{item['raw']['message_id']}-{run}"}
            cases.append(Case(item["case"], raw=raw, message_id=raw["message_id"]))
        else:
            ticket = item["ticket"]
            ticket["external_id"] += f"-{run}"
            if "order" in ticket:
                ticket["order"]["id"] += f"-{run}"
            cases.append(Case(item["case"], ticket=SubmitTicket.model_validate(ticket)))
    return cases


def start_workers(settings: Settings, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TICKETQ_AMQP_URL": settings.amqp_url,
        "TICKETQ_DATABASE_URL": settings.database_url,
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "shared.cli.main", "worker", name],
            env=env,
            stdout=(log_dir / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        for name in messaging.QUEUES
    ]


async def poll(check: Callable[[], Awaitable[T | None]], *, seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while (found := await check()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer after {seconds:.0f}s: {what}")
        await asyncio.sleep(0.1)
    return found


async def run_demo(
    settings: Settings, *, log_dir: Path, keep_running: bool
) -> list[tuple[Case, Result]]:
    await migrate(settings.database_url)
    connection = await aio_pika.connect_robust(settings.amqp_url)
    pool = await create_pool(settings, size=2)
    workers = start_workers(settings, log_dir)
    try:
        channel = await connection.channel()
        await messaging.declare_topology(channel, settings)
        for queue in messaging.QUEUES:
            await poll(partial(_consumed, channel, queue), seconds=60, what=f"{queue} worker")
        outcomes = []
        async with TicketPublisher(settings.amqp_url, producer="demo") as publisher:
            # One at a time, as a customer's contacts arrive: intake handles a batch
            # concurrently, so a follow-up published together with its opener could win.
            for case in load_cases(run=uuid.uuid4().hex[:6]):
                await _publish(settings, publisher, case)
                result = await poll(
                    partial(_outcome, pool, connection, case), seconds=30, what=case.title
                )
                outcomes.append((case, result))
        return outcomes
    finally:
        if not keep_running:
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.wait(timeout=30)
        await pool.close()
        await connection.close()


async def _consumed(channel: aio_pika.abc.AbstractChannel, queue: str) -> bool | None:
    return True if (await messaging.queue_stats(channel, queue))[1] > 0 else None


async def _publish(settings: Settings, publisher: TicketPublisher, case: Case) -> None:
    if case.ticket is not None:
        case.message_id = await publisher.publish(case.ticket, message_id=case.message_id or None)
    elif case.raw is not None:
        await publish_raw(settings.amqp_url, [case.raw])


async def _outcome(
    pool: Pool, connection: aio_pika.abc.AbstractConnection, case: Case
) -> Result | None:
    if case.raw is not None:
        return await _dead_letter_outcome(connection, case.message_id)
    assert case.ticket is not None
    handled = await pool.fetchval(
        "SELECT true FROM inbox WHERE consumer = 'intake' AND message_id = $1", case.message_id
    )
    row = await pool.fetchrow(
        """SELECT c.ticket_id, c.is_follow_up, c.message_id, t.kind, t.owner_role,
                  t.first_handler_id
           FROM ticket_contacts c JOIN tickets t ON t.id = c.ticket_id
           WHERE c.source = $1 AND c.external_id = $2""",
        case.ticket.source,
        case.ticket.external_id,
    )
    if not handled or row is None:
        return None
    if row["message_id"] != case.message_id:
        outcome = f"duplicate of {row['ticket_id']}'s contact: no new ticket"
    elif row["is_follow_up"]:
        to = row["first_handler_id"] or f"the {row['owner_role']} queue (not taken yet)"
        outcome = f"follow-up attached to {row['ticket_id']}, goes to {to}"
    else:
        outcome = "new ticket, waiting for an agent"
    return Result(row["ticket_id"], row["kind"], row["owner_role"], outcome)


async def _dead_letter_outcome(
    connection: aio_pika.abc.AbstractConnection, message_id: str
) -> Result | None:
    for message in await _peek(connection, messaging.dead_letter_queue("intake")):
        if message.message_id == message_id:
            headers = message.headers
            return Result(
                "-",
                "-",
                "intake.dlq",
                f"dead-lettered: {headers.get(messaging.DL_REASON)!s} "
                f"({headers.get(messaging.DL_ERROR)!s})",
            )
    return None


async def _peek(
    connection: aio_pika.abc.AbstractConnection, queue: str
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Read without taking: deliveries never acked go back, in order, when the channel closes."""
    reader = await connection.channel()
    count = (await messaging.queue_stats(reader, queue))[0]
    q = await reader.get_queue(queue)
    seen = []
    for _ in range(count):
        message = await q.get(no_ack=False, fail=False)
        if message is None:
            break
        seen.append(message)
    await reader.close()
    return seen


def render(outcomes: list[tuple[Case, Result]]) -> str:
    rows = [("case", "ticket", "kind", "queue", "outcome")] + [
        (c.title, r.ticket_id, r.kind, r.queue, r.outcome) for c, r in outcomes
    ]
    widths = [max(_width(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    )


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if "\u2e80" <= ch <= "\ua4cf" or "\uff00" <= ch <= "\uffef" else 1 for ch in text)
