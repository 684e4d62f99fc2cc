"""Live pages: every change to a ticket reaches the open pages as a numbered event.

The number is the ticket history row's id (a durable sequence). One poller per web process
reads the history by id (`HistoryFeed`) and fans the rows out to the open streams; a stream
that reconnects says the last number it saw (`Last-Event-ID`, or `after=` in its URL) and is
first replayed what it missed from the history itself, then fed live. Nothing is kept in
memory that the history does not also hold, so a dropped connection or a restarted web
process loses nothing.

Ids are handed out when a row is inserted, not when it commits: a row numbered 10 may become
visible after row 11. Delivering 11 first and then replaying "after 11" would lose 10, so the
feed delivers in number order only (`Sequencer`): a missing number holds back the rows above
it until it appears, or for `gap_grace` seconds (a rolled-back insert leaves a hole for good).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sse_starlette import ServerSentEvent

from shared.db import Pool
from shared.tickets.read_model import history_after, last_history_id

log = structlog.get_logger(__name__)

Row = Mapping[str, Any]


@dataclass
class Sequencer:
    """Puts history rows in number order: everything up to `settled` was delivered, and a row
    above a hole waits until the hole fills or has been open for `grace` seconds."""

    settled: int
    grace: float
    _pending: dict[int, Row] = field(default_factory=dict)
    _hole_since: float | None = None

    def offer(self, rows: Iterable[Row], now: float) -> list[Row]:
        """The rows that may be delivered now, in number order."""
        for row in rows:
            if row["id"] > self.settled:
                self._pending.setdefault(row["id"], row)
        out: list[Row] = []
        while self._pending:
            following = self.settled + 1
            if following in self._pending:
                out.append(self._pending.pop(following))
                self.settled, self._hole_since = following, None
                continue
            if self._hole_since is None:
                self._hole_since = now
            if now - self._hole_since < self.grace:
                break
            # Given up on: an insert rolled back (or a transaction too slow to wait for).
            self.settled, self._hole_since = min(self._pending) - 1, None
        return out


@dataclass(frozen=True)
class Change:
    """A history row as the streams send it: encoded once, however many streams send it."""

    id: int
    ticket_id: str
    sse: bytes

    @classmethod
    def of(cls, row: Row) -> Change:
        return cls(row["id"], row["ticket_id"], event_of(row).encode())


class Subscription:
    """One open stream's inbox of changes (one ticket's, or all)."""

    def __init__(self, ticket_id: str | None, limit: int) -> None:
        self.ticket_id = ticket_id
        self.queue: asyncio.Queue[Change] = asyncio.Queue(limit)
        self.overflowed = False

    def put(self, change: Change) -> None:
        if self.ticket_id is not None and change.ticket_id != self.ticket_id:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True  # the stream re-reads from the history (see `events`)


class HistoryFeed:
    """Polls the history by id every `interval` seconds and fans new rows out to subscribers."""

    def __init__(
        self,
        pool: Pool,
        *,
        interval: float = 0.1,
        gap_grace: float = 2.0,
        queue_limit: int = 2000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.interval = interval
        self.gap_grace = gap_grace
        self.queue_limit = queue_limit
        self.monotonic = monotonic
        self.sequencer: Sequencer | None = None
        self.subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def settled(self) -> int:
        assert self.sequencer is not None, "HistoryFeed.start() first"
        return self.sequencer.settled

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            self.sequencer = Sequencer(await last_history_id(conn), self.gap_grace)
        self._task = asyncio.create_task(self._run(), name="history-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, ticket_id: str | None) -> tuple[Subscription, int]:
        """A new subscription, and the number up to which it must be replayed from the
        history: everything above it reaches the subscription (no await in between)."""
        sub = Subscription(ticket_id, self.queue_limit)
        self.subscribers.add(sub)
        return sub, self.settled

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    async def poll(self) -> int:
        """One round: read what is new, deliver what is in order; how many rows went out."""
        assert self.sequencer is not None
        async with self.pool.acquire() as conn:
            rows = await history_after(conn, self.sequencer.settled, limit=1000)
        ready = self.sequencer.offer(rows, self.monotonic())
        for row in ready:
            change = Change.of(row)
            for sub in list(self.subscribers):
                sub.put(change)
        return len(ready)

    async def _run(self) -> None:
        while True:
            try:
                delivered = await self.poll()
            except Exception as exc:  # the database away: the live pages wait, then go on
                log.warning("history_feed_poll_failed", error=f"{type(exc).__name__}: {exc}")
                delivered = 0
            if delivered < 1000:
                await asyncio.sleep(self.interval)


# How soon a browser reconnects after the stream drops (its default is a few seconds).
RECONNECT_MS = 500


def event_of(row: Row) -> ServerSentEvent:
    """An SSE event for one history row: numbered by the row's id."""
    data = {
        "seq": row["id"],
        "ticket": row["ticket_id"],
        "action": row["action"],
        "actor": row["actor_name"],
        "at": row["at"].isoformat(),
    }
    return ServerSentEvent(
        id=str(row["id"]), event="change", data=json.dumps(data, ensure_ascii=False)
    )


async def events(
    feed: HistoryFeed,
    *,
    after: int,
    ticket_id: str | None,
    replay_limit: int = 2000,
    batch: int = 500,
) -> AsyncIterator[bytes]:
    """The stream of one tab, as chunks of encoded events: first what it missed after `after`
    (from the history), then every new row as it settles. What is ready at once goes out in
    one chunk (one write, not one per event). A subscriber that fell too far behind is
    replayed again from the history rather than dropped."""
    yield ServerSentEvent(retry=RECONNECT_MS, comment=f"from {after}").encode()
    while True:
        sub, upto = feed.subscribe(ticket_id)
        try:
            last = after
            while last < upto:
                async with feed.pool.acquire() as conn:
                    rows = await history_after(conn, last, ticket_id=ticket_id, limit=replay_limit)
                rows = [r for r in rows if r["id"] <= upto]
                if not rows:
                    break
                yield b"".join(Change.of(r).sse for r in rows)
                last = rows[-1]["id"]
            last = max(last, upto)
            while not sub.overflowed:
                ready = [await sub.queue.get()]
                while len(ready) < batch and not sub.queue.empty():
                    ready.append(sub.queue.get_nowait())
                fresh = [c for c in ready if c.id > last]
                if fresh:
                    yield b"".join(c.sse for c in fresh)
                    last = fresh[-1].id
            after = last
        finally:
            feed.unsubscribe(sub)
