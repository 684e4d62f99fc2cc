"""What several rooms' tests share (a pytest plugin, see tests/conftest.py): the desks running,
commands sent the way the CLI sends them, tickets with handoffs to work on, and `ticketq` run
as a process would run it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from typer.testing import CliRunner

from services.aftersales.worker import SERVICE as AFTERSALES
from services.finance.contracts import RefundArgs
from services.finance.worker import SERVICE as FINANCE
from services.intake.client import publish_ticket
from services.intake.worker import SERVICE as INTAKE
from services.presale.worker import SERVICE as PRESALE
from services.warehouse.worker import SERVICE as WAREHOUSE
from shared.agents.contracts import SignInReply
from shared.bootstrap import RunningService, Service, start_service
from shared.cli.commands import queue_of
from shared.cli.main import app
from shared.cli.output import Refused
from shared.cli.session import remember, signed_in
from shared.clock import FixedClock
from shared.config import Settings, get_settings
from shared.db import Pool
from shared.messaging.envelope import Contract, Envelope
from shared.messaging.topology import AUTHORIZATION, EXCHANGE, REPLY_EXCHANGE, amqp_message
from shared.tickets.contracts import CommandReply, HandOffArgs
from tests.helpers import T0, add_agents, command_for, contact, depth, token_for, wait_until

ROSTER = [
    ("a1", "李娜", ["aftersales"], ["day"]),
    ("w1", "赵仓", ["warehouse"], ["day"]),
    ("f1", "钱财", ["finance"], ["day"]),
    ("s1", "孙主管", ["supervisor"], ["day"]),
]

LEDGERS = (
    "refunds",
    "order_payments",
    "payouts",
    "payout_approvals",
    "cashback_register",
    "invoices",
    "shipments",
    "stock_movements",
    "returns",
    "interceptions",
)


async def add_roster(db: Pool) -> None:
    await add_agents(db, ROSTER)


async def start_all(settings: Settings, services: Sequence[Service]) -> list[RunningService]:
    clock = FixedClock(T0)
    return [await start_service(s, settings, clock=clock) for s in services]


@pytest.fixture
async def desk(settings: Settings, db: Pool, broker: object) -> AsyncIterator[None]:
    """Intake, after-sales, two warehouse and two finance replicas, in this process."""
    await add_roster(db)
    running = await start_all(
        settings, [INTAKE, AFTERSALES, WAREHOUSE, WAREHOUSE, FINANCE, FINANCE]
    )
    yield
    for r in running:
        await r.stop()


async def ask(
    settings: Settings,
    ticket_id: str,
    actor: str,
    args: Contract,
    *,
    queue: str | None = None,
    message_id: str | None = None,
    copies: int = 1,
    token: str | None = None,
) -> list[CommandReply]:
    """Publish the command `copies` times (same message id) to `queue` (by default, where the
    catalogue sends it), signed with `token` (else a session of `actor`'s, minted); every
    answer."""
    command = command_for(ticket_id, actor, args)
    queue = queue or queue_of(command)
    headers = {AUTHORIZATION: token} if token else await signed(settings, actor)
    envelope = Envelope.wrap(
        command,
        producer="test",
        correlation_id=ticket_id,
        message_id=message_id,
    )
    connection = await aio_pika.connect_robust(settings.amqp_url)
    answers: list[CommandReply] = []
    async with connection:
        channel = await connection.channel()
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        await replies.bind(REPLY_EXCHANGE, routing_key=replies.name)
        exchange = await channel.get_exchange(EXCHANGE)
        for _ in range(copies):
            message = amqp_message(envelope, headers=headers)
            message.reply_to = replies.name
            await exchange.publish(message, routing_key=queue)
        async with replies.iterator(timeout=20) as incoming:
            async for answer in incoming:
                await answer.ack()
                answers.append(CommandReply.model_validate(json.loads(answer.body)["payload"]))
                if len(answers) == copies:
                    break
    return answers


async def signed(settings: Settings, actor: str) -> dict[str, str]:
    """The `authorization` header of a command by `actor`: a session of theirs, minted; none if
    they are not on the roster (the worker says `not_signed_in`)."""
    try:
        return {AUTHORIZATION: await token_for(settings, actor)}
    except LookupError:
        return {}


async def one(
    settings: Settings,
    ticket_id: str,
    actor: str,
    args: Contract,
    *,
    queue: str | None = None,
    token: str | None = None,
) -> CommandReply:
    return (await ask(settings, ticket_id, actor, args, queue=queue, token=token))[0]


async def new_ticket(settings: Settings, db: Pool, name: str, **order: Any) -> str:
    """An after-sales ticket on a paid order of 59.00, with a1 as its first handler."""
    await publish_ticket(settings.amqp_url, contact(name, subject="我要退货", order_id=f"o-{name}"))

    async def assigned() -> bool:
        owner = await db.fetchval("SELECT owner_agent_id FROM tickets WHERE external_id = $1", name)
        return bool(owner == "a1")

    await wait_until(assigned, what="auto-assignment")
    tid = await db.fetchval("SELECT id FROM tickets WHERE external_id = $1", name)
    if order:
        await db.execute(
            "UPDATE tickets SET order_data = order_data || $2::jsonb WHERE id = $1", tid, order
        )
    return str(tid)


async def hand_off(settings: Settings, db: Pool, tid: str, role: str, action: str) -> str:
    reply = await one(settings, tid, "a1", HandOffArgs(role=role, action=action))
    assert reply.accepted, reply
    state = await ticket_state(db, tid)
    return str(state["handoffs"][-1]["id"])


async def ticket_state(db: Pool, tid: str) -> dict[str, Any]:
    state: dict[str, Any] = await db.fetchval("SELECT state FROM tickets WHERE id = $1", tid)
    return state


async def has_messages(channel: AbstractChannel, queue: str) -> bool:
    return await depth(channel, queue) > 0


async def count(db: Pool, sql: str, *args: object) -> int:
    return int(await db.fetchval(sql, *args))


async def ledger_rows(db: Pool) -> dict[str, int]:
    return {t: await count(db, f"SELECT count(*) FROM {t}") for t in LEDGERS}


def refund(handoff_id: str, amount: str, **extra: Any) -> RefundArgs:
    return RefundArgs(handoff_id=handoff_id, amount=Decimal(amount), reason="退货退款", **extra)


@pytest.fixture
async def desk_worker(settings: Settings, broker: object) -> AsyncIterator[None]:
    """One desk worker (pre-sale): it applies roster, presence and ticket commands."""
    running = await start_service(PRESALE, settings, clock=FixedClock(T0))
    yield
    await running.stop()


# --------------------------------------------------------------------------------------------
# The CLI as a process would run it


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"exit {self.exit_code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


Cli = Callable[..., Awaitable[Run]]


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Cli:
    """`await cli("tickets", "list", env={...})`: one `ticketq` invocation, like a process.

    The agent named by `--as` (or `TICKETQ_AGENT`) is signed in first, if on the roster: a
    session is minted into the test's session file, as `ticketq login` would keep it. A test
    that brings its own `TICKETQ_SESSION_FILE` signs in itself."""
    session_file = tmp_path / "ticketq-session"

    async def invoke(*args: str, env: dict[str, str] | None = None) -> Run:
        environment = {
            "TICKETQ_AMQP_URL": settings.amqp_url,
            "TICKETQ_DATABASE_URL": settings.database_url,
            "TICKETQ_CLOCK_START": T0.isoformat(),
            "TICKETQ_AGENT": None,
            "TICKETQ_SESSION_FILE": str(session_file),
            **(env or {}),
        }
        named = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--as"]
        for agent in named or [a for a in [environment.get("TICKETQ_AGENT")] if a]:
            if "TICKETQ_SESSION_FILE" not in (env or {}):
                await sign_in_quickly(settings, agent, session_file)

        def call() -> Run:
            get_settings.cache_clear()  # a process reads its environment once; we are many
            try:
                result = CliRunner().invoke(app, list(args), env=environment)
            finally:
                get_settings.cache_clear()
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            return Run(result.exit_code, result.stdout, result.stderr)

        return await asyncio.to_thread(call)

    return invoke


async def sign_in_quickly(settings: Settings, agent_id: str, session_file: Path) -> None:
    """Keep a minted session of `agent_id` in `session_file`, unless one is there already or
    they are not on the roster."""
    try:
        signed_in(agent_id, session_file)
        return
    except Refused:
        pass
    try:
        token = await token_for(settings, agent_id)
    except LookupError:
        return
    remember(
        SignInReply(accepted=True, message="minted", token=token, agent_id=agent_id),
        session_file,
    )
