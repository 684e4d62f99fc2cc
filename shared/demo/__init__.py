"""`ticketq demo`: the whole system locally, fed a realistic sample of contacts.

Runs `ticketq setup` (each worker then on its own credentials), loads the sample roster, starts
the five workers as processes on a shop clock set to 11:30 (staffed hours, whatever the time
here), publishes `tickets.json` (cases drawn from the seed manuals) as the upstream systems and
prints what became of each; then walks the wrong-item ticket through seed 000's flow with the
agent CLI (on its own credentials) and prints its timeline.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aio_pika

from services.catalogue import CATALOGUE
from services.intake.client import TicketPublisher, publish_raw
from services.intake.contracts import SubmitTicket
from shared.agents.roster import SHOP_TIMEZONE
from shared.config import Settings
from shared.db import Pool, create_pool
from shared.demo import sign_in
from shared.messaging import amqp
from shared.messaging import topology as messaging
from shared.setup import Credentials, broker_admin, setup

T = TypeVar("T")


@dataclass
class Case:
    title: str
    ticket: SubmitTicket | None = None
    raw: dict[str, Any] | None = None
    message_id: str = ""
    walk_through: bool = False  # the ticket the agent CLI then takes through the whole flow
    walk_flow: bool = False  # the ticket the agent CLI then moves along its kind's flow


@dataclass
class Result:
    ticket_id: str
    kind: str
    queue: str
    outcome: str
    agent_id: str = ""


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
            cases.append(
                Case(
                    item["case"],
                    ticket=SubmitTicket.model_validate(ticket),
                    walk_through=item.get("walk_through", False),
                    walk_flow=item.get("walk_flow", False),
                )
            )
    return cases


def demo_env(settings: Settings) -> dict[str, str]:
    """What the workers and CLI commands of the demo run with: these servers, the shop clock."""
    today = datetime.now(SHOP_TIMEZONE)
    opening = datetime(today.year, today.month, today.day, 11, 30, tzinfo=SHOP_TIMEZONE)
    return {
        **os.environ,
        "TICKETQ_AMQP_URL": settings.amqp_url,
        "TICKETQ_DATABASE_URL": settings.database_url,
        "TICKETQ_CLOCK_START": opening.isoformat(),
    }


def as_cli(env: dict[str, str]) -> dict[str, str]:
    """The agents' CLI's environment: its own broker user where it has one, and no database
    at all (its reads are requests to the workers)."""
    own = Settings(amqp_url=env["TICKETQ_AMQP_URL"]).for_service("cli", env)
    return {
        **{k: v for k, v in env.items() if not k.endswith("DATABASE_URL")},
        "TICKETQ_AMQP_URL": own.amqp_url,
    }


def start_workers(env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    workers = []
    for name in CATALOGUE.services:  # not its queues: `desk` is a queue two workers share
        with (log_dir / f"{name}.log").open("ab") as log:  # the child keeps its own copy
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "shared.cli.main", "worker", name],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return workers


def start_web(env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    """The workbench (`ticketq web`) on the demo's servers and clock."""
    with (log_dir / "web.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "shared.cli.main", "web"], env=env, stdout=log, stderr=log
        )


def web_url(env: dict[str, str]) -> str:
    return (
        f"http://{env.get('TICKETQ_WEB_HOST', '127.0.0.1')}:{env.get('TICKETQ_WEB_PORT', '8080')}/"
    )


async def _web_started(env: dict[str, str], web: subprocess.Popen[bytes], log_dir: Path) -> str:
    """Where the workbench answers, or why not (the demo goes on without it)."""
    host, port = env.get("TICKETQ_WEB_HOST", "127.0.0.1"), int(env.get("TICKETQ_WEB_PORT", "8080"))

    async def answering() -> bool | None:
        if web.poll() is not None:
            return False
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return None
        writer.close()
        return True

    try:
        up = await poll(answering, seconds=30, what="the workbench")
    except TimeoutError:
        up = False
    if not up:
        return f"workbench: did not start (port {port} taken?), see {log_dir}/web.log\n"
    return (
        f"workbench: {web_url(env)} (sign in as an agent of the roster, e.g. zhangwei, with "
        f"the password in {log_dir}/dev-password)\n"
    )


async def poll(check: Callable[[], Awaitable[T | None]], *, seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while (found := await check()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer after {seconds:.0f}s: {what}")
        await asyncio.sleep(0.1)
    return found


async def run_demo(
    settings: Settings, *, log_dir: Path, keep_running: bool, say: Callable[[str], None]
) -> None:
    # The admin step: each service's user and role (when `servers.sh env` gave their URLs),
    # migrations, grants, topology. The workers then run on their own credentials.
    await setup(settings.for_service("admin"), Credentials.from_env(), broker_admin())
    # A fresh clone has none: the logs, the session, the password go there.
    await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    env = demo_env(settings)
    env["TICKETQ_SESSION_FILE"] = str(log_dir / "session")  # not the user's own sign-ins
    agent = as_cli(env)
    say(f"shop clock: {env['TICKETQ_CLOCK_START']} (staffed hours), running at the real pace\n")
    connection = await amqp.connect_robust(settings.amqp_url, name="ticketq-demo")
    pool = await create_pool(settings, size=2)
    web = start_web(env, log_dir)
    workers = [*start_workers(env, log_dir), web]
    try:
        channel = await connection.channel()
        for queue in CATALOGUE.queue_names:
            await poll(partial(_consumed, channel, queue), seconds=60, what=f"{queue} worker")
        say(await _web_started(env, web, log_dir))
        # A roster change is a command to a desk worker: the workers are up now.
        roster = resources.files("shared.demo") / "roster.yaml"
        await load_roster_and_sign_in(settings, pool, agent, say, str(roster), log_dir)
        outcomes = []
        upstream = settings.for_service("upstream")  # the IM gateway and the order centre
        async with TicketPublisher(upstream.amqp_url, producer="demo") as publisher:
            # One at a time, as a customer's contacts arrive: intake handles a batch
            # concurrently, so a follow-up published together with its opener could win.
            for case in load_cases(run=uuid.uuid4().hex[:6]):
                await _publish(upstream, publisher, case)
                result = await poll(
                    partial(_outcome, pool, connection, case), seconds=30, what=case.title
                )
                outcomes.append((case, result))
        say("\n" + render(outcomes) + "\n")
        walked = next(r for c, r in outcomes if c.walk_through)
        await walk_through(agent, say, walked.ticket_id, walked.agent_id)
        unpaid = next(r for c, r in outcomes if c.walk_flow)
        await walk_flow(agent, say, unpaid.ticket_id, unpaid.agent_id)
        if keep_running:
            say(f"\nthe workers and the workbench keep running: {web_url(env)}")
    finally:
        if not keep_running:
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.wait(timeout=30)
        await pool.close()
        await connection.close()


async def load_roster_and_sign_in(
    settings: Settings,
    pool: Pool,
    env: dict[str, str],
    say: Callable[[str], None],
    roster: str,
    log_dir: Path,
) -> None:
    """Load the sample roster (as its supervisor, once anyone has a password: a run before),
    give its agents this run's dev password and sign them all in (`shared.demo.sign_in`)."""
    agents = sign_in.roster_ids(Path(roster))
    password, password_file = sign_in.dev_password(log_dir)
    loader: list[str] = []
    if await sign_in.roster_needs_supervisor(pool) and await sign_in.set_dev_passwords(
        pool, [sign_in.SUPERVISOR], password
    ):
        login = ["login", "--as", sign_in.SUPERVISOR, "--password-file", str(password_file)]
        await run_cli(env, say, *login)
        loader = ["--as", sign_in.SUPERVISOR]
    await run_cli(env, say, "roster", "load", roster, *loader)
    await sign_in.set_dev_passwords(pool, agents, password)
    cli = settings.for_service("cli", env)  # as the agents' CLI signs in
    await sign_in.sign_in_all(cli, agents, password, Path(env["TICKETQ_SESSION_FILE"]), say)


async def run_cli(
    env: dict[str, str], say: Callable[[str], None], *args: str, expect: int = 0
) -> None:
    """Run `ticketq ARGS` as an agent would and show it; a surprise exit code stops the demo."""
    say("$ ticketq " + " ".join(shlex.quote(a) for a in args))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    say(textwrap.indent(output.decode().rstrip(), "  "))
    if proc.returncode != expect:
        raise RuntimeError(f"`ticketq {' '.join(args)}` exited {proc.returncode}, not {expect}")


async def walk_through(
    env: dict[str, str], say: Callable[[str], None], ticket: str, first_handler: str
) -> None:
    """Seed 000 (客服流程化规范) along the wrong-item flow: photos, the shop's error, the
    compensation refused, so the warehouse picks the return up and receives it, and finance
    refunds (once, never more than was paid); each result comes back to the first handler, who
    alone ends the flow (a free `resolve` half-way is refused) and closes."""
    say(f"--- {ticket}: the wrong item, from first handler to closed, through the agent CLI ---")
    steps = [  # (what an agent types, the exit code it must give)
        ("reply {t} 您好,麻烦拍一下收到的商品照片 --as {fh}", 0),
        ("step {t} --answer photos_received --as {fh}", 0),
        ("step {t} --answer shop_error --note 核实为我方错发 --as {fh}", 0),
        ("step {t} --answer refused --note 顾客不要补偿,要求退货退款 --as {fh}", 0),
        ("close {t} --as liuyang", 1),  # another agent: not_owner
        (
            "warehouse pick-up {t} {t}-H1 --carrier SF --tracking-number SF1234567890"
            " --as chenqiang",
            0,
        ),
        (
            "warehouse receive-return {t} {t}-H1 --inspection passed --restock MUG-GR=1"
            " --as chenqiang",
            0,
        ),
        ("close {t} --as chenqiang", 1),  # the warehouse: not_first_handler
        ("step {t} --answer verified --as {fh}", 0),
        ("finance refund {t} {t}-H2 --amount 120.00 --reason 发错货 --as yangjing", 1),  # > paid
        ("finance refund {t} {t}-H2 --amount 89.00 --reason 发错货 --as yangjing", 0),
        ("resolve {t} 已退款 --as {fh}", 1),  # not_allowed_by_flow: the flow has a step left
        ("step {t} --answer told --note 退货已入库,退款89.00已原路退回 --as {fh}", 0),
        ("close {t} --as {fh}", 0),
        ("tickets show {t}", 0),
    ]
    await type_lines(env, say, steps, t=ticket, fh=first_handler)


async def walk_flow(
    env: dict[str, str], say: Callable[[str], None], ticket: str, agent: str
) -> None:
    """Seed 003 (催付) on its flow: each reminder a step recorded with its time; a move the
    flow does not allow is refused, naming the allowed ones; paid -> thank -> the end."""
    say(f"--- {ticket}: the unpaid order reminder, along its flow ---")
    steps = [
        ("step {t} --answer reminded --note 旺旺催付,附优惠券 --as {fh}", 0),
        ("step {t} --answer thanked --as {fh}", 1),  # not yet paid: not_allowed_by_flow
        ("step {t} --answer paid --as {fh}", 0),
        ("step {t} --answer thanked --note 已转发货关怀 --as {fh}", 0),
        ("close {t} --as {fh}", 0),
    ]
    await type_lines(env, say, steps, t=ticket, fh=agent)


async def type_lines(
    env: dict[str, str], say: Callable[[str], None], steps: list[tuple[str, int]], **names: str
) -> None:
    """What an agent types, line by line, each with the exit code it must give."""
    for line, expect in steps:
        await run_cli(env, say, *shlex.split(line.format(**names)), expect=expect)


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
        """SELECT c.ticket_id, c.is_follow_up, c.message_id, t.kind, t.first_handler_role,
                  t.first_handler_id, a.name AS first_handler_name
           FROM ticket_contacts c JOIN tickets t ON t.id = c.ticket_id
           LEFT JOIN agents a ON a.id = t.first_handler_id
           WHERE c.source = $1 AND c.external_id = $2""",
        case.ticket.source,
        case.ticket.external_id,
    )
    # Wait for auto-assignment too: the sample roster has someone on shift for every role.
    if not handled or row is None or row["first_handler_id"] is None:
        return None
    agent = f"{row['first_handler_name']} ({row['first_handler_id']})"
    if row["message_id"] != case.message_id:
        outcome = f"duplicate of {row['ticket_id']}'s contact: no new ticket"
    elif row["is_follow_up"]:
        outcome = f"follow-up attached to {row['ticket_id']}, goes to its first handler {agent}"
    else:
        outcome = f"new ticket, auto-assigned to {agent}: its first handler"
    return Result(
        row["ticket_id"], row["kind"], row["first_handler_role"], outcome, row["first_handler_id"]
    )


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
