"""A Double-11 shop day (双11), compressed in time, to prove the system end to end.

    python -m bench.shopday [--load 1 3 10] [--shrink 20] [--seconds 72] [--chart-dir DIR]

The five workers run as processes on a shop clock that runs `speed` times the real pace
(`TICKETQ_CLOCK_START`, `_SPEED`, `_ORIGIN`), so the timers fire on the shop's time. Upstream
systems publish the day's contacts and order events (`bench/shopday_plan.py`: the shape, the
mix, the paths) at their scheduled times, open loop: a late system never delays the next
arrival, and every latency is counted from the scheduled send time (no coordinated omission).
Simulated agents and staff work each ticket along its kind's flow with think times, through the
commands the CLI sends (`Console`). At the end `bench/shopday_report.py` prints the hops, the
breaches and the queue depth, and proves that every contact became exactly one ticket or
follow-up, no effect happened twice, the DLQs are empty and every due timer fired once; the
run exits 1 if a proof fails.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
from pydantic import ValidationError

from bench.harness import bench_environment, broker_channel, worker_processes
from bench.shopday_plan import (
    OPERATION_DOUBLE,
    OPERATION_RESENT,
    AwaitPaid,
    ByCustomer,
    Contact,
    DayPlan,
    OrderEvent,
    Step,
    Task,
    Upstream,
    agent_think,
    customer_think,
    day_start,
    first_reply_think,
    new_message_id,
    next_on_shift,
    on_shift,
    plan_day,
    roster_mapping,
    staff_of,
    staff_think,
    upstream_event,
)
from bench.shopday_report import QUEUED, DayResult, measure, print_result
from services.catalogue import CATALOGUE
from services.finance.contracts import FinanceOperation
from services.intake.client import TicketPublisher
from services.warehouse.contracts import WarehouseOperation
from shared.agents.contracts import LoadRoster, RosterReply
from shared.agents.identity import NOT_SIGNED_IN, SESSION_EXPIRED, sign_in
from shared.cli.commands import ask, send_command
from shared.cli.output import Unreachable
from shared.clock import StartedClock
from shared.config import Settings
from shared.db import Pool, create_pool
from shared.demo.sign_in import set_dev_passwords
from shared.messaging.envelope import Contract, Envelope
from shared.messaging.topology import EXCHANGE, amqp_message, publish_all, queue_stats
from shared.tickets.contracts import (
    CloseArgs,
    CommandReply,
    OnTicket,
    ReassignArgs,
    RecordResultArgs,
    ReplyArgs,
    StepArgs,
    TicketCommand,
)
from shared.tickets.roles import Role, role_for_kind

STARTUP = 25.0  # s of real time the five worker processes are given to start (a busy machine)
WORKERS = ("intake", "presale", "aftersales", "warehouse", "finance")
BOARD_POLL = 0.015  # s of real time between two looks at the open tickets
SUPERVISOR_LOOKS = 0.1  # s of real time between the supervisor's looks for escalations
SAMPLE_EVERY = 0.25  # s of real time between two queue-depth samples
MAX_CASE_WAIT = 60.0  # s of real time a person waits for the system before giving the case up


# --- The one place commands go out ----------------------------------------------------------------


class Console:
    """Every command of the simulated people, sent as the CLI sends it (request/reply to the
    queue the catalogue names for its type), signed with the agent's session: each person
    signs in (`shared.agents.identity.sign_in`) when they first act, and again once their
    session (a shift, `session_hours` of shop time) has expired."""

    def __init__(self, settings: Settings, password: str) -> None:
        self.settings, self._password = settings, password
        self._tokens: dict[str, str] = {}
        self._signing: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # one sign-in each
        self.round_trips: dict[str, list[float]] = defaultdict(list)  # command -> real seconds
        self.sign_ins = 0

    async def on_ticket(self, ticket_id: str, actor: str, args: Contract) -> CommandReply:
        return (await self.send(ticket_id, actor, args))[0]

    async def send(
        self, ticket_id: str, actor: str, args: Contract, *, message_id: str | None = None
    ) -> tuple[CommandReply, str]:
        """The answer, and the id of the command that got it (to re-send it by)."""
        command = _carrier(ticket_id, actor, args)
        name = str(getattr(args, "command", type(args).__name__))
        message_id = message_id or new_message_id()
        for _ in range(2):
            token = await self._token(actor)
            started = time.monotonic()
            reply = await send_command(
                self.settings, command, token=token, message_id=message_id, timeout=60
            )
            self.round_trips[name].append(time.monotonic() - started)
            if reply.code not in (SESSION_EXPIRED, NOT_SIGNED_IN):
                break
            if self._tokens.get(actor) == token:  # a new shift: sign in again, send it anew
                del self._tokens[actor]
            message_id = new_message_id()  # the refusal is that id's answer for good
        return reply, message_id

    async def _token(self, agent: str) -> str:
        async with self._signing[agent]:
            if agent not in self._tokens:
                reply = await sign_in(self.settings, agent, self._password, timeout=60)
                if not reply.accepted or reply.token is None:
                    raise AssertionError(f"{agent} cannot sign in: {reply.code}: {reply.message}")
                self.sign_ins += 1
                self._tokens[agent] = reply.token
            return self._tokens[agent]

    async def load_roster(self, pool: Pool, roster: Mapping[str, Any], by: str) -> None:
        """The operators' set-up: the roster loaded while nobody has a password yet (as
        `ticketq roster load`), then everyone's password set in the store (as `ticketq agent
        password` does)."""
        ids = [str(a["id"]) for a in roster["agents"]]
        request = LoadRoster(roster=dict(roster), sets_online=ids, requested_by=by)
        reply = await ask(self.settings, request, RosterReply, sender=by, timeout=30)
        if not reply.accepted:
            raise AssertionError(f"the roster was refused: {reply.code}: {reply.message}")
        await set_dev_passwords(pool, ids, self._password)


def _carrier(ticket_id: str, actor: str, args: Contract) -> OnTicket:
    """The message that carries `args`: an agent's ticket command or a role's operation."""
    fields = {"ticket_id": ticket_id, "actor_id": actor, "args": args}
    for message_type in (TicketCommand, WarehouseOperation, FinanceOperation):
        try:
            return message_type.model_validate(fields)
        except ValidationError:
            continue
    raise TypeError(f"no command carries {type(args).__name__}")


# --- Upstream systems: the gateway's contacts, the order centre's events ------------------------


class UpstreamSystems:
    """The chat gateway (`TicketPublisher`, the Python client) and the order centre."""

    def __init__(
        self,
        publisher: TicketPublisher,
        exchange: aio_pika.abc.AbstractExchange,
        clock: StartedClock,
    ) -> None:
        self.publisher, self.exchange, self.clock = publisher, exchange, clock
        self.published: dict[str, datetime] = {}  # external id -> shop time it was confirmed

    async def contact(self, contact: Contact) -> None:
        await self.publisher.publish(contact.submit)
        self.published[contact.key] = self.clock.now()
        if contact.republish == "same_id":
            await self.publisher.publish(contact.submit)  # same contact id: the inbox drops it
        elif contact.republish == "new_id":
            await self.publisher.publish(contact.submit, message_id=new_message_id())

    async def order_event(self, event: Contract, *, twice: bool = False) -> None:
        envelope = Envelope.wrap(event, producer="order-centre", message_id=new_message_id())
        queue = CATALOGUE.of(type(event)).queues[0]
        copies = 2 if twice else 1
        await publish_all((self.exchange, queue, amqp_message(envelope)) for _ in range(copies))


# --- What the simulated people see: the open tickets -------------------------------------------


@dataclass
class Seen:
    id: str
    external_id: str
    kind: str
    status: str
    owner_role: str
    owner_agent_id: str | None
    first_handler_id: str | None
    flow: Mapping[str, Any] | None
    open_handoffs: list[Mapping[str, str]]  # id and role of each handoff without a result

    @property
    def escalated(self) -> bool:
        return any(h["role"] == Role.SUPERVISOR for h in self.open_handoffs)


class Board:
    """The tickets as `ticketq tickets show` shows them, to the cases waiting on them: one
    query every BOARD_POLL s for all the tickets someone waits on (the look is fresh: a case
    waits at least until the next query)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.seen: dict[str, Seen] = {}  # by the opening contact's external id
        # A case's ticket is found by its order, if any: a follow-up may have opened it.
        self.orders: dict[str, str] = {}  # order id -> the opening contact's external id
        self._waiting: list[tuple[str, Callable[[Seen], bool], asyncio.Future[Seen]]] = []

    async def until(self, key: str, check: Callable[[Seen], bool], what: str) -> Seen:
        future: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, check, future))
        try:
            return await asyncio.wait_for(future, MAX_CASE_WAIT)
        except TimeoutError:
            raise TimeoutError(f"waited {MAX_CASE_WAIT:g} s (real) for {what}") from None

    async def watch(self) -> None:
        while True:
            if self._waiting:
                await self._look()
            await asyncio.sleep(BOARD_POLL)

    async def _look(self) -> None:
        rows = await self.pool.fetch(
            """SELECT id, external_id, kind, status, owner_role, owner_agent_id,
                      first_handler_id, state->'flow' AS flow, order_id,
                      (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                  'id', h->>'id', 'role', h->>'role')), '[]')
                         FROM jsonb_array_elements(state->'handoffs') h
                        WHERE coalesce(h->'result', 'null') = 'null') AS open_handoffs
               FROM tickets
               WHERE status <> 'closed' AND (external_id = ANY($1::text[])
                  OR order_id = ANY($2::text[]))""",
            keys := list({key for key, _, _ in self._waiting}),
            [order for order, key in self.orders.items() if key in keys],
        )
        for record in rows:
            seen = Seen(**{k: v for k, v in record.items() if k != "order_id"})
            self.seen[self.orders.get(record["order_id"], record["external_id"])] = seen
        still = []
        for key, check, future in self._waiting:
            if future.done():
                continue
            if (row := self.seen.get(key)) is not None and check(row):
                future.set_result(row)
            else:
                still.append((key, check, future))
        self._waiting = still


# --- The simulation ---------------------------------------------------------------------------


@dataclass
class Sim:
    settings: Settings
    clock: StartedClock
    pool: Pool
    console: Console
    upstream: UpstreamSystems
    board: Board
    attached: dict[str, asyncio.Event] = field(default_factory=dict)  # follow-up key -> sent
    paid: dict[str, asyncio.Event] = field(default_factory=dict)  # order id -> paid published
    refused: list[str] = field(default_factory=list)  # a command its flow should have taken
    gave_up: list[str] = field(default_factory=list)  # the system too far behind to wait for
    handoffs: dict[str, datetime] = field(default_factory=dict)  # handoff -> operation sent at
    tasks: list[asyncio.Future[None]] = field(default_factory=list)  # besides the cases
    _rr: itertools.count[int] = field(default_factory=itertools.count)

    def spawn(self, work: Awaitable[None]) -> None:
        self.tasks.append(asyncio.ensure_future(work))

    async def until(self, at: datetime) -> None:
        """Sleep until the shop clock reads `at`."""
        ahead = (at - self.clock.now()).total_seconds() / self.clock.speed
        if ahead > 0:
            await asyncio.sleep(ahead)

    async def think(self, how_long: timedelta) -> None:
        await self.until(self.clock.now() + how_long)

    async def first_handler(self, key: str, role: Role) -> str:
        """The first handler, on shift: while they are away, the supervisor on shift gives the
        ticket to an agent of the role who is on (SPEC §5.7, recorded with the reason)."""
        shifts, supervisors = dict(staff_of(role)), dict(staff_of(Role.SUPERVISOR))
        while True:
            now, row = self.clock.now(), self.board.seen[key]
            agent = row.first_handler_id
            if agent is not None and on_shift(shifts[agent], now):
                return agent
            present = [a for a, s in shifts.items() if on_shift(s, now)]
            on_duty = [a for a, s in supervisors.items() if on_shift(s, now)]
            if present and on_duty:
                break
            await self.until(min(next_on_shift(s, now) for s in shifts.values()))
        successor = present[next(self._rr) % len(present)]
        reason = f"{agent} is off shift"
        reply = await self.console.on_ticket(
            row.id,
            on_duty[next(self._rr) % len(on_duty)],
            ReassignArgs(new_first_handler_id=successor, reason=reason),
        )
        if not reply.accepted:
            raise AssertionError(f"{row.id}: reassignment refused: {reply}")
        row.first_handler_id = successor
        return successor

    async def on_duty(self, role: Role) -> str:
        """Someone of `role` on shift now, waiting for the next shift if nobody is."""
        people = staff_of(role)
        now = self.clock.now()
        on = [a for a, s in people if on_shift(s, now)]
        if not on:
            await self.until(min(next_on_shift(s, now) for _, s in people))
            return await self.on_duty(role)
        return on[next(self._rr) % len(on)]


async def run_case(sim: Sim, contact: Contact) -> None:
    """One customer's problem, from the first reply to the close, along its kind's path."""
    rng = random.Random(contact.seed)
    role = role_for_kind(contact.kind)
    try:
        await sim.board.until(
            contact.key, lambda r: r.first_handler_id is not None, "an agent to be assigned"
        )
        await sim.think(first_reply_think(rng))
        await act(sim, contact.key, role, ReplyArgs(text="您好,双11快乐,我来帮您看一下"))
        for follow_up in contact.follow_ups:  # the customer wrote again: answer that too
            await sim.attached[follow_up.key].wait()
            await wait_attached(sim, follow_up)
            await sim.think(agent_think(rng))
            await act(sim, contact.key, role, ReplyArgs(text="您好,还在处理,请稍等"))
        for move in contact.path:
            await MOVES[type(move)](sim, contact, role, move, rng)
        await sim.think(agent_think(rng))
        await act(sim, contact.key, role, CloseArgs())
    except AssertionError as exc:
        sim.refused.append(f"{contact.key} ({contact.kind}): {exc}")
    except (TimeoutError, Unreachable, PathOvertaken) as exc:
        sim.gave_up.append(f"{contact.key} ({contact.kind}): {exc}")


async def act(sim: Sim, key: str, role: Role, args: Contract) -> CommandReply:
    """The first handler (on shift) sends a command on the ticket; it must be accepted."""
    for _ in range(3):
        # A fresh look: a supervisor may have it now (an escalation), or a new first handler.
        await sim.board.until(key, lambda r: not r.escalated, "an escalation to be settled")
        agent = await sim.first_handler(key, role)
        reply = await sim.console.on_ticket(sim.board.seen[key].id, agent, args)
        if reply.accepted:
            return reply
        if reply.code == "not_allowed_by_flow":
            raise PathOvertaken(reply.message)
        if reply.code not in ("handoffs_pending", "not_owner"):  # escalated meanwhile: wait
            break
        await asyncio.sleep(2 * BOARD_POLL)
    raise AssertionError(f"{type(args).__name__} refused: {reply.code}: {reply.message}")


class PathOvertaken(Exception):
    """The scripted path no longer fits the ticket: it waited past one of its flow's timeouts
    (the customer's 24 h for photos), or a follow-up overtook the opening contact and opened
    it as another kind. The flow refused the move, rightly; the case is given up."""


async def supervise(sim: Sim) -> None:
    """The supervisor on duty settles each escalation (a timer's, SPEC §8) after a look at it;
    its result returns the ticket to its first handler."""
    settled: set[str] = set()
    while True:
        escalated = await sim.pool.fetch(
            """SELECT t.id, h->>'id' AS handoff_id
               FROM tickets t, jsonb_array_elements(t.state->'handoffs') h
               WHERE t.owner_role = 'supervisor' AND t.status <> 'closed'
                 AND h->>'role' = 'supervisor' AND coalesce(h->'result', 'null') = 'null'"""
        )
        for row in escalated:
            if row["handoff_id"] not in settled:
                settled.add(row["handoff_id"])
                sim.spawn(settle(sim, row["id"], row["handoff_id"]))
        await asyncio.sleep(SUPERVISOR_LOOKS)


async def settle(sim: Sim, ticket_id: str, handoff_id: str) -> None:
    await sim.think(agent_think(random.Random(handoff_id)))
    supervisor = await sim.on_duty(Role.SUPERVISOR)
    decided = RecordResultArgs(handoff_id=handoff_id, outcome="done", data={"decision": "继续跟进"})
    reply = await sim.console.on_ticket(ticket_id, supervisor, decided)
    if not reply.accepted:
        sim.refused.append(f"{ticket_id}: escalation {handoff_id} not settled: {reply.message}")


async def wait_attached(sim: Sim, follow_up: Contact) -> None:
    deadline = time.monotonic() + MAX_CASE_WAIT
    while not await sim.pool.fetchval(
        "SELECT true FROM ticket_contacts WHERE source = $1 AND external_id = $2",
        follow_up.submit.source,
        follow_up.key,
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"follow-up {follow_up.key} not attached")
        await asyncio.sleep(BOARD_POLL)


Mover = Callable[[Sim, Contact, Role, Any, random.Random], Awaitable[None]]


async def step(sim: Sim, contact: Contact, role: Role, move: Step, rng: random.Random) -> None:
    await sim.think(agent_think(rng))
    await act(sim, contact.key, role, StepArgs(answer=move.answer, reason=move.reason))


async def customer_takes_time(
    sim: Sim, contact: Contact, role: Role, move: ByCustomer, rng: random.Random
) -> None:
    await sim.think(customer_think(rng))


async def await_payment(
    sim: Sim, contact: Contact, role: Role, move: AwaitPaid, rng: random.Random
) -> None:
    assert contact.submit.order is not None
    await sim.paid[contact.submit.order.id].wait()
    await sim.think(agent_think(rng))


async def order_centre(
    sim: Sim, contact: Contact, role: Role, move: Upstream, rng: random.Random
) -> None:
    assert contact.submit.order is not None
    event = upstream_event(move.event, contact.submit.order.id, sim.clock.now())
    await sim.upstream.order_event(event, twice=rng.random() < 0.05)


async def staff_task(
    sim: Sim, contact: Contact, role: Role, move: Task, rng: random.Random
) -> None:
    """Warehouse or finance staff do the flow's open handoff when they get to it; sometimes
    they re-send it (same command id) or send it twice (a new one): one effect all the same."""
    row = await sim.board.until(
        contact.key, lambda r: bool(r.flow and r.flow.get("handoff_id")), "the flow's handoff"
    )
    assert row.flow is not None
    handoff = str(row.flow["handoff_id"])
    people = dict(staff_of(move.role))
    await sim.think(staff_think(rng))
    await sim.until(min(next_on_shift(s, sim.clock.now()) for s in people.values()))
    who = await sim.on_duty(move.role)
    assert contact.submit.order is not None
    args = move.args(handoff, contact.submit.order.amount)
    sim.handoffs[handoff] = sim.clock.now()
    reply, command_id = await sim.console.send(row.id, who, args)
    if not reply.accepted:
        raise AssertionError(f"{type(args).__name__} refused: {reply.code}: {reply.message}")
    roll = rng.random()
    if roll < OPERATION_RESENT:
        again, _ = await sim.console.send(row.id, who, args, message_id=command_id)
        assert again == reply, f"re-sent {command_id} answered differently: {again}"
    elif roll < OPERATION_RESENT + OPERATION_DOUBLE:
        await sim.console.send(row.id, who, args)  # refused or a no-op: checked at the end
    # Back with the first handler once the flow has moved past the handoff.
    await sim.board.until(
        contact.key,
        lambda r: bool(r.flow) and (r.flow or {}).get("handoff_id") != handoff,
        f"the result of {handoff} to move the flow on",
    )


MOVES: dict[type, Mover] = {
    Step: step,
    ByCustomer: customer_takes_time,
    AwaitPaid: await_payment,
    Upstream: order_centre,
    Task: staff_task,
}


async def send_contacts(sim: Sim, plan: DayPlan) -> list[asyncio.Task[None]]:
    """Publish each contact at its scheduled time (open loop) and start its case."""
    cases, publishing = [], []
    for contact in plan.sent:
        await sim.until(contact.at)
        if contact.follow_up_of is None:
            cases.append(asyncio.create_task(run_case(sim, contact)))
        publishing.append(asyncio.create_task(_publish(sim, contact)))
    await asyncio.gather(*publishing)  # every contact is sent, however late the generator is
    return cases


async def _publish(sim: Sim, contact: Contact) -> None:
    await sim.upstream.contact(contact)
    if contact.follow_up_of is not None:
        sim.attached[contact.key].set()


async def send_order_events(sim: Sim, events: list[OrderEvent]) -> None:
    for event in events:
        await sim.until(event.at)
        await sim.upstream.order_event(event.event, twice=event.twice)
        sim.paid[str(event.event.order_id)].set()


async def sample_queues(
    sim: Sim,
    channel: aio_pika.abc.AbstractChannel,
    samples: list[tuple[datetime, dict[str, int]]],
    since: datetime,
) -> None:
    await sim.until(since)
    while True:
        depths = {q: (await queue_stats(channel, q))[0] for q in CATALOGUE.queue_names}
        depths[QUEUED] = await sim.pool.fetchval(
            "SELECT count(*) FROM tickets WHERE status = 'queued'"  # tickets_queued index
        )
        samples.append((sim.clock.now(), depths))
        await asyncio.sleep(SAMPLE_EVERY)


async def simulate(
    settings: Settings, clock: StartedClock, plan: DayPlan, *, drain: float = 45.0
) -> DayResult:
    """Run the planned day against running workers; measure and prove it. The clock must
    read before the day's first arrival (the workers started in time)."""
    pool = await create_pool(settings, size=4)
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        channel = await connection.channel(on_return_raises=True)
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        console = Console(settings, secrets.token_urlsafe(18))
        await console.load_roster(pool, roster_mapping(), "shopday")
        first = min(c.at for c in plan.sent)
        if clock.now() >= first:
            raise RuntimeError(f"the shop clock reads {clock.now()} already, after {first}")
        async with TicketPublisher(settings.amqp_url, producer="im-gateway") as publisher:
            sim = Sim(
                settings,
                clock,
                pool,
                console,
                UpstreamSystems(publisher, exchange, clock),
                Board(pool),
            )
            for contact in plan.contacts:
                sim.attached.update({f.key: asyncio.Event() for f in contact.follow_ups})
                if contact.submit.order is not None:
                    sim.paid[contact.submit.order.id] = asyncio.Event()
                    sim.board.orders[contact.submit.order.id] = contact.key
            samples: list[tuple[datetime, dict[str, int]]] = []
            watcher = asyncio.create_task(sim.board.watch())
            supervisor = asyncio.create_task(supervise(sim))
            sampler = asyncio.create_task(
                sample_queues(
                    sim, await connection.channel(), samples, first - timedelta(minutes=10)
                )
            )
            events = asyncio.create_task(send_order_events(sim, plan.order_events))
            cpu0 = time.process_time()
            started = time.monotonic()
            cases = await send_contacts(sim, plan)
            await asyncio.wait(cases, timeout=drain)
            await events
            wall = time.monotonic() - started
            sim_cpu = time.process_time() - cpu0
            for task in (watcher, supervisor, sampler, *cases, *sim.tasks):
                task.cancel()
            sim.gave_up += [
                f"case {i} not closed in time" for i, c in enumerate(cases) if not c.done()
            ]
            caught_up = await catch_up(pool, channel, clock, drain)
            result = await measure(
                pool,
                channel,
                plan,
                clock,
                console,
                samples,
                sim.refused,
                sim.handoffs,
                sim.upstream.published,
                wall,
                sim_cpu,
            )
            result.caught_up, result.sign_ins, result.gave_up = (
                caught_up,
                console.sign_ins,
                sim.gave_up,
            )
            return result
    finally:
        await connection.close()
        await pool.close()


async def catch_up(
    pool: Pool, channel: aio_pika.abc.AbstractChannel, clock: StartedClock, limit: float
) -> float | None:
    """Wait (at most `limit` s) until the system has caught up with the day: no message ready
    in any queue, none in the outbox, no timer due more than a real second ago still pending.
    How long it took; None if it had not caught up by then (the proofs then say what is late)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        due_by = clock.now() - timedelta(seconds=clock.speed)
        backlog = sum([(await queue_stats(channel, q))[0] for q in CATALOGUE.queue_names])
        backlog += await pool.fetchval("SELECT count(*) FROM outbox")
        backlog += await pool.fetchval(
            "SELECT count(*) FROM timers WHERE state = 'pending' AND fire_after <= $1", due_by
        )
        if backlog == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    return None


# --- The bench: worker processes on the compressed clock -------------------------------------


def _clock_env(clock_start: datetime, speed: float, origin: float) -> dict[str, str]:
    return {
        "TICKETQ_CLOCK_START": clock_start.isoformat(),
        "TICKETQ_CLOCK_SPEED": repr(speed),
        "TICKETQ_CLOCK_ORIGIN": repr(origin),
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def running_workers(settings: Settings, env: Mapping[str, str]) -> AsyncIterator[list[int]]:
    """One process of each worker on the shop clock `env` gives; their pids."""
    async with (
        broker_channel(settings) as channel,
        worker_processes(dict.fromkeys(WORKERS, 1), settings, channel, env=env) as procs,
    ):
        yield [p.pid for p in procs]


async def bench_day(
    base: Settings, load: float, shrink: float, seconds: float, seed: int
) -> DayResult:
    plan = plan_day(load, shrink=shrink, seed=seed)
    speed = 24 * 3600 / seconds
    start = day_start() - timedelta(minutes=2)
    async with bench_environment(base, f"shopday{int(load)}x{os.getpid()}") as settings:
        origin = time.time() + STARTUP  # the shop clock reads `start` then, the workers up
        clock = StartedClock(start, speed=speed, origin=origin)
        async with running_workers(settings, _clock_env(start, speed, origin)) as pids:
            cpu0 = {pid: _cpu_seconds(pid) for pid in pids}
            result = await simulate(settings, clock, plan)
            result.worker_cpu = sum(_cpu_seconds(p) - c for p, c in cpu0.items())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    parser.add_argument("--shrink", type=float, default=20.0, help="contacts divided by this")
    parser.add_argument("--seconds", type=float, default=72.0, help="real seconds for 24 h")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--chart-dir", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    # Made now, not when the first day is over: a folder that cannot be made fails at once.
    args.chart_dir.mkdir(parents=True, exist_ok=True)
    failed = False
    for load in args.load:
        result = asyncio.run(bench_day(Settings(), load, args.shrink, args.seconds, args.seed))
        print_result(result, chart=args.chart_dir / f"shopday-{load:g}x.png")
        failed |= not result.proven
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
