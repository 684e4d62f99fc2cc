"""The firing loop: every replica runs one; each due timer fires exactly once.

A round reads which tickets have timers due, then fires each ticket's first due timer in a
transaction of its own: claim all the ticket's pending timers (`store.claim_ticket`: all or
nothing, never waiting), run the fire handler, mark the timer fired, commit; then it sleeps
until the next due time (one indexed query), a notification that a nearer timer was armed, or
the clock being moved past it. A kill at any point rolls the open transaction back: its rows
are still pending, and fire later once.

One ticket per transaction, its timers all held before anything else: a firing takes its locks
in the order commands take theirs (the ticket's timers, the ticket, the agents' load rows in
key order, `agent_load`, migration 0011) and waits for none of the timers. A transaction firing
several escalations held the load rows of several agents in no one order, and deadlocked with
desk commands under load (the shop day at 10x: ten a run, each a second's wait and a batch
fired again); a firing that held one timer of a ticket could deadlock with another replica's
firing or a command that held another.

Notifications come over LISTEN on a connection of the loop's own, outside the pool (LISTEN is
session state; the pool skips session reset). While that connection is down the loop re-reads
the next due time every `deaf_poll` seconds, and once it is back wakes to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import asyncpg
import structlog

from shared.clock import Clock
from shared.db import Connection, Pool
from shared.messaging.runtime import is_transient, write_outbox
from shared.timers import metrics, store
from shared.timers.firing import FireHandler, Firing
from shared.timers.store import Timer

log = structlog.get_logger(__name__)


class _Outage:
    """Logs the start of an outage once and its end once, however many retries between."""

    def __init__(self, lost: str, restored: str) -> None:
        self.lost, self.restored = lost, restored
        self._since: float | None = None

    def failed(self, **fields: object) -> None:
        if self._since is None:
            self._since = time.monotonic()
            log.warning(self.lost, exc_info=True, **fields)

    def ended(self) -> None:
        if self._since is not None:
            log.info(self.restored, outage_s=round(time.monotonic() - self._since, 1))
            self._since = None


class _HandlerFailed(Exception):
    def __init__(self, timer: Timer, error: Exception) -> None:
        super().__init__(f"the fire handler of timer {timer.id} failed")
        self.timer, self.error = timer, error


class TimerLoop:
    """Fires the timers of the kinds in `handlers`; `run` is a `shared.bootstrap.Background`.

    `on_commit` is called after a round committed outbox messages (wakes the outbox relay).
    """

    def __init__(
        self,
        handlers: Mapping[str, FireHandler],
        *,
        database_url: str,
        on_commit: Callable[[], None] = lambda: None,
        batch: int = 200,
        concurrency: int = 4,
        idle: float = 60.0,
        deaf_poll: float = 1.0,
        sample_every: float = 15.0,
    ) -> None:
        if not handlers:
            raise ValueError("a timer loop needs at least one fire handler")
        self.handlers = dict(handlers)
        self.kinds = sorted(handlers)
        self.database_url = database_url
        self.on_commit = on_commit
        self.batch = batch
        self.concurrency = concurrency
        self.idle = timedelta(seconds=idle)  # re-reads now and then: a missed notice is no loss
        self.deaf_poll = timedelta(seconds=deaf_poll)
        self.sample_every = sample_every
        self.listening = asyncio.Event()  # set while LISTEN is up (tests wait on it)
        self._wakeup = asyncio.Event()
        self._asleep = False
        self._next: datetime | None = None

    @property
    def sleeping(self) -> bool:
        """True while the loop waits for the next due time (between rounds)."""
        return self._asleep

    async def run(self, pool: Pool, clock: Clock) -> None:
        helpers = [
            asyncio.create_task(self._listen_forever(), name="timers-listen"),
            asyncio.create_task(self._sample_forever(pool), name="timers-sample"),
        ]
        try:
            await self._fire_forever(pool, clock)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _fire_forever(self, pool: Pool, clock: Clock) -> None:
        outage = _Outage("timer_loop_failed", "timer_loop_recovered")
        backoff = 0.1
        while True:
            self._wakeup.clear()
            self._asleep = False
            try:
                while await self.fire_due(pool, clock) == self.batch:
                    pass
                async with pool.acquire() as conn:
                    self._next = await store.next_due(conn, self.kinds)
            except Exception:  # the database away: the rows wait, try again
                outage.failed(retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            outage.ended()
            backoff = 0.1
            cap = clock.now() + (self.idle if self.listening.is_set() else self.deaf_poll)
            self._asleep = True
            await clock.wait_until(
                cap if self._next is None else min(self._next, cap), self._wakeup
            )

    async def fire_due(self, pool: Pool, clock: Clock) -> int:
        """Fire the timers due now, one per ticket of up to `batch` tickets, each in a
        transaction of its own; how many fired (a timer whose handler failed is postponed, and
        held up no other). A ticket's next due timer fires in the next round: the handler of
        one may have cancelled or re-armed the others.

        Up to `concurrency` tickets at once, each on a connection of its own, so that a backlog
        is not fired one commit after another (bench/timers.py, 3,000 due at once on 2 cores:
        1,100 fires/s one at a time, 1,700 four at a time, 1,300 eight at a time; one
        transaction for all, which deadlocked, did 6,700)."""
        now = clock.now()
        async with pool.acquire() as conn:
            tickets = await store.due_tickets(conn, self.kinds, now, self.batch)
        slots = asyncio.Semaphore(self.concurrency)

        async def fire(ticket_id: str) -> Firing | None:
            async with slots, pool.acquire() as conn:
                return await self._fire(conn, ticket_id, now)

        results = await asyncio.gather(*map(fire, tickets), return_exceptions=True)
        # What committed is counted and announced even when another ticket's transaction
        # failed (the database went away: the loop backs off on the error raised after).
        firings = [r for r in results if isinstance(r, Firing)]
        self._committed(firings, clock)
        if failure := next((r for r in results if isinstance(r, BaseException)), None):
            raise failure
        return len(firings)

    async def _fire(self, conn: Connection, ticket_id: str, now: datetime) -> Firing | None:
        """Fire the ticket's timer due first, holding all the ticket's pending timers
        (`store.claim_ticket`): its firing, committed. None if another transaction holds one
        of them (a later round tries again), or if the handler failed: rolled back, then the
        timer postponed."""
        try:
            async with conn.transaction():
                timer = await store.claim_ticket(conn, ticket_id, self.kinds, now)
                if timer is None:
                    return None
                firing = Firing(conn, timer, now)
                try:
                    await self.handlers[timer.kind](firing)
                except Exception as exc:
                    raise _HandlerFailed(timer, exc) from exc
                await write_outbox(conn, firing.outbox)
                await store.mark_fired(conn, [timer.id], now)
            return firing
        except _HandlerFailed as failed:
            failure, timer = failed.error, failed.timer
        error = f"{type(failure).__name__}: {failure}"
        # A lost race (a deadlock's victim, a serialization failure) is tried again shortly,
        # like the rest: worth a warning, not an error.
        report = log.warning if is_transient(failure) else log.error
        report("timer_fire_failed", timer_id=timer.id, error=error)
        async with conn.transaction():
            # Still pending and due (nobody else fired or cancelled it meanwhile): back off.
            if (pending := await store.claim_one(conn, timer.id, now)) is not None:
                metrics.FAILED.labels(pending.kind).inc()
                await store.postpone(conn, pending, now, error)
        return None

    def _committed(self, firings: list[Firing], clock: Clock) -> None:
        now = clock.now()
        for firing in firings:
            metrics.FIRED.labels(firing.timer.kind).inc()
            metrics.LATENESS.observe((now - firing.timer.due_at).total_seconds())
            for callback in firing.on_commit:
                callback()
        if any(f.outbox for f in firings):
            self.on_commit()

    # --- notifications -------------------------------------------------------------------

    def _on_notice(self, _conn: Connection, _pid: int, _channel: str, payload: object) -> None:
        notice = store.read_notice(str(payload))
        if notice is None or notice[0] not in self.handlers:
            return
        # While a round runs, any notice may be newer than what it read: wake to re-read.
        if not self._asleep or self._next is None or notice[1] < self._next.timestamp():
            self._wakeup.set()

    async def _listen_forever(self) -> None:
        outage = _Outage("timer_listen_lost", "timer_listen_restored")
        while True:
            try:
                await self._listen(outage)
            except Exception:
                self.listening.clear()
                outage.failed()
            await asyncio.sleep(1.0)

    async def _listen(self, outage: _Outage, ping_every: float = 30.0) -> None:
        """Listen until the connection is lost (then raise)."""
        conn = await asyncpg.connect(self.database_url)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(store.CHANNEL, self._on_notice)
            self.listening.set()
            outage.ended()
            self._wakeup.set()  # arms while deaf were not heard: re-read the next due time
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), ping_every)
                if not lost.is_set():  # a peer that vanished silently: find out
                    await conn.fetchval("SELECT 1", timeout=5)
            raise ConnectionError("the LISTEN connection was closed")
        finally:
            conn.terminate()

    async def _sample_forever(self, pool: Pool) -> None:
        """The pending gauge: one count on the partial index now and then, never per timer."""
        while True:
            with contextlib.suppress(Exception):  # the database away: the gauge keeps its value
                async with pool.acquire() as conn:
                    metrics.PENDING.set(await store.count_pending(conn))
            await asyncio.sleep(self.sample_every)
