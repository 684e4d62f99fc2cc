"""The live feed over the real database: rows in number order even when they commit out of
it, a reconnecting stream replayed from the history, one chunk for what is ready at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from shared.db import Pool
from shared.web.live import HistoryFeed, events


async def add_ticket(db: Pool, tid: str) -> None:
    await db.execute(
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                                customer_id, customer, subject, body, owner_role, opened_at)
           VALUES ($1, 'aftersales', 'open', 'wangwang', 'normal', 't', $1, 'c',
                   '{"id": "c", "nick": "c"}', 's', '', 'aftersales', now())""",
        tid,
    )


INSERT = """INSERT INTO ticket_history (ticket_id, at, actor_id, actor_name, action, message_id)
            VALUES ($1, now(), 'a1', '李娜', $2, gen_random_uuid()::text) RETURNING id"""


async def change(db: Pool | asyncpg.Connection[Any], tid: str, action: str = "replied") -> int:
    return int(await db.fetchval(INSERT, tid, action))


def changes(chunk: bytes) -> list[tuple[int, str, str]]:
    """(seq, ticket, action) of every event in a chunk."""
    out = []
    for block in chunk.decode().split("\r\n\r\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") == "change":
            data = json.loads(lines["data"])
            out.append((int(lines["id"]), data["ticket"], data["action"]))
    return out


@pytest.fixture
async def feed(db: Pool) -> AsyncIterator[HistoryFeed]:
    await add_ticket(db, "T-1")
    await add_ticket(db, "T-2")
    running = HistoryFeed(db, interval=0.02, gap_grace=30.0)
    await running.start()
    yield running
    await running.stop()


async def next_changes(stream: AsyncIterator[bytes]) -> list[tuple[int, str, str]]:
    while True:
        found = changes(await asyncio.wait_for(anext(stream), 10))
        if found:
            return found


async def test_a_row_committed_late_is_delivered_before_the_rows_above_it(
    feed: HistoryFeed, db: Pool, database_url: str
) -> None:
    stream = events(feed, after=feed.settled, ticket_id=None)
    await anext(stream)  # the reconnect delay
    slow = await asyncpg.connect(database_url)
    try:
        async with slow.transaction():
            held = await change(slow, "T-1", "handed_off")  # numbered first, committed last
            above = await change(db, "T-2")
            reading = asyncio.create_task(next_changes(stream))
            done, _ = await asyncio.wait({reading}, timeout=0.5)
            assert not done, "a row above an uncommitted one went out"
        got = await reading
    finally:
        await slow.close()
    assert [seq for seq, _, _ in got] == [held, above]


async def test_a_stream_resumes_after_the_last_number_it_saw(feed: HistoryFeed, db: Pool) -> None:
    first = await change(db, "T-1")
    missed = [await change(db, "T-2"), await change(db, "T-1", "resolved")]
    resumed = events(feed, after=first, ticket_id=None)
    await anext(resumed)
    got = await next_changes(resumed)
    while len(got) < 2:
        got += await next_changes(resumed)
    assert got == [(missed[0], "T-2", "replied"), (missed[1], "T-1", "resolved")]

    one_ticket = events(feed, after=first, ticket_id="T-1")
    await anext(one_ticket)
    assert await next_changes(one_ticket) == [(missed[1], "T-1", "resolved")]
    live = await change(db, "T-1", "closed")
    await change(db, "T-2", "replied")
    assert await next_changes(one_ticket) == [(live, "T-1", "closed")]
