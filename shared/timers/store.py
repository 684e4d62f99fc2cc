"""Timer rows: arm and cancel (inside the caller's transaction), and what the loops query.

A timer is a row per (ticket, kind, generation). Arming cancels the pending generation and
inserts the next one; a cancelled row is never claimed, and a claimed row is locked, so a
cancel racing a firing waits for it and then finds nothing pending (it returns False).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from shared.db import Connection

ClockKind = Literal["business", "calendar"]

# NOTIFY channel of the firing loops; the payload is "<kind> <due epoch seconds>".
CHANNEL = "ticketq_timers"

_LONGEST_RETRY = timedelta(minutes=5)


@dataclass(frozen=True)
class Timer:
    id: int
    ticket_id: str
    kind: str
    generation: int
    clock: ClockKind
    due_at: datetime
    armed_at: datetime
    attempts: int
    payload: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Timer:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


async def arm(
    conn: Connection,
    *,
    ticket_id: str,
    kind: str,
    due_at: datetime,
    clock: ClockKind,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
) -> int:
    """Arm (or re-arm) the ticket's timer of `kind` to fire at `due_at`; its generation.

    Call inside the transaction of the state change that causes it: the timer exists, the
    older generation is cancelled and the loops are woken only if that transaction commits.
    """
    if due_at.tzinfo is None:
        raise ValueError(f"a timer's due time must be timezone-aware, got {due_at!r}")
    _require_transaction(conn)
    # The UPDATE locks the live generation first, so two concurrent re-arms queue up here;
    # two first arms collide on the unique key instead (a transient error: retried).
    await _cancel(conn, ticket_id, kind)
    generation: int = await conn.fetchval(
        """INSERT INTO timers
               (ticket_id, kind, generation, clock, due_at, fire_after, armed_at, payload)
           SELECT $1, $2, coalesce(max(generation), 0) + 1, $3, $4, $4, $5, $6
             FROM timers WHERE ticket_id = $1 AND kind = $2
           RETURNING generation, pg_notify($7, $8)""",
        ticket_id,
        kind,
        clock,
        due_at,
        now,
        dict(payload or {}),
        # Delivered on commit only; a loop sleeping on a later time wakes for this one.
        CHANNEL,
        notice(kind, due_at),
    )
    return generation


@dataclass(frozen=True)
class Arming:
    """One timer for `arm_all`: what `arm` takes, but the ticket."""

    kind: str
    due_at: datetime
    clock: ClockKind
    payload: Mapping[str, Any]


async def arm_all(
    conn: Connection,
    *,
    ticket_id: str,
    cancel: Sequence[str],
    arm: Sequence[Arming],
    now: datetime,
    fresh: bool = False,
) -> set[str]:
    """Cancel the ticket's pending timers of the kinds in `cancel`, and arm `arm` (re-arming
    cancels the pending generation first, as `arm` does); the kinds of `cancel` found pending.

    Two statements whatever the number of timers (`arm` and `cancel` take one or two each:
    three cancels and two arms cost six round trips when a ticket opens, which the intake
    profile showed; bench/ratio.py). The kinds must be distinct: a kind both armed and cancelled,
    or armed twice, needs the order of `arm` and `cancel` calls. `fresh`: the ticket was made in
    this transaction and can have no timer yet, so there is nothing to cancel (one statement).
    """
    kinds = [*cancel, *(a.kind for a in arm)]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"arm_all takes each kind once, got {kinds}")
    for a in arm:
        if a.due_at.tzinfo is None:
            raise ValueError(f"a timer's due time must be timezone-aware, got {a.due_at!r}")
    _require_transaction(conn)
    cancelled: set[str] = set()
    if kinds and not fresh:
        # Before the insert, in a statement of its own: the insert must see the pending
        # generations cancelled (one pending per kind) and take the next generation number.
        rows = await conn.fetch(
            """UPDATE timers SET state = 'cancelled'
                WHERE ticket_id = $1 AND kind = ANY($2::text[]) AND state = 'pending'
                RETURNING kind""",
            ticket_id,
            kinds,
        )
        cancelled = {row["kind"] for row in rows if row["kind"] in cancel}
    if arm:
        await conn.execute(
            """INSERT INTO timers
                   (ticket_id, kind, generation, clock, due_at, fire_after, armed_at, payload)
               SELECT $1, a.kind,
                      coalesce((SELECT max(generation) FROM timers t
                                 WHERE t.ticket_id = $1 AND t.kind = a.kind), 0) + 1,
                      a.clock, a.due_at, a.due_at, $2, a.payload::jsonb
                 FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::text[])
                      AS a (kind, clock, due_at, payload)
               -- `notice`, written in SQL: delivered on commit only.
               RETURNING pg_notify($7, kind || ' ' || round(extract(epoch FROM due_at), 6))""",
            ticket_id,
            now,
            [a.kind for a in arm],
            [a.clock for a in arm],
            [a.due_at for a in arm],
            [json.dumps(dict(a.payload)) for a in arm],
            CHANNEL,
        )
    return cancelled


def notice(kind: str, due_at: datetime) -> str:
    return f"{kind} {due_at.timestamp():.6f}"


def read_notice(text: str) -> tuple[str, float] | None:
    """(kind, due epoch seconds) of a notification; None if it is not ours."""
    kind, _, epoch = text.rpartition(" ")
    try:
        return kind, float(epoch)
    except ValueError:
        return None


async def cancel(conn: Connection, *, ticket_id: str, kind: str) -> bool:
    """Cancel the ticket's pending timer of `kind`: False if none was pending (never armed,
    cancelled already, or fired already: a firing in progress is waited for)."""
    _require_transaction(conn)
    return await _cancel(conn, ticket_id, kind)


def _require_transaction(conn: Connection) -> None:
    # Outside one, a re-arm could cancel the old generation and fail to insert the new one,
    # and a timer could change while the state that caused it did not.
    if not conn.is_in_transaction():
        raise RuntimeError("arm() and cancel() belong in the transaction of the state change")


async def _cancel(conn: Connection, ticket_id: str, kind: str) -> bool:
    status = await conn.execute(
        """UPDATE timers SET state = 'cancelled'
            WHERE ticket_id = $1 AND kind = $2 AND state = 'pending'""",
        ticket_id,
        kind,
    )
    return bool(status != "UPDATE 0")


async def next_due(conn: Connection, kinds: Sequence[str]) -> datetime | None:
    """When the earliest pending timer of these kinds may fire (None: none pending)."""
    at: datetime | None = await conn.fetchval(
        "SELECT min(fire_after) FROM timers WHERE state = 'pending' AND kind = ANY($1::text[])",
        list(kinds),
    )
    return at


async def due_tickets(
    conn: Connection, kinds: Sequence[str], now: datetime, limit: int
) -> list[str]:
    """Up to `limit` tickets with a timer of these kinds due, the earliest due first (a plain
    read: `claim_ticket` then takes each, if nobody holds it)."""
    rows = await conn.fetch(
        """SELECT ticket_id FROM timers
            WHERE state = 'pending' AND fire_after <= $2 AND kind = ANY($1::text[])
            GROUP BY ticket_id ORDER BY min(fire_after) LIMIT $3""",
        list(kinds),
        now,
        limit,
    )
    return [row["ticket_id"] for row in rows]


async def claim_ticket(
    conn: Connection, ticket_id: str, kinds: Sequence[str], now: datetime
) -> Timer | None:
    """Lock every pending timer of the ticket (inside a transaction), or none if another
    transaction holds any of them: all or nothing, never waiting. Returns the one of `kinds`
    due first at `now` (None if none is, or if it gave up).

    Holding them all, the firing's handlers may change any of the ticket's clocks (a flow's
    timeout does), and it waits for nobody before it locks the ticket: not every writer of
    timers takes a ticket's in one order (order events cancel several kinds in one statement),
    so a firing that held one and waited for the next could close a cycle. The first pending
    timer is taken alone first: of two replicas' firings, the one that misses it gives up at
    once, rather than each taking half and both giving up again and again."""
    first = await conn.fetchval(
        """SELECT id FROM timers
            WHERE id = (SELECT min(id) FROM timers WHERE ticket_id = $1 AND state = 'pending')
              AND state = 'pending'
            FOR UPDATE SKIP LOCKED""",
        ticket_id,
    )
    if first is None:
        return None  # held by another transaction, or nothing pending any more
    rows = await conn.fetch(
        """SELECT t.*, (SELECT count(*) FROM timers
                         WHERE ticket_id = $1 AND state = 'pending') AS pending
             FROM timers t WHERE t.ticket_id = $1 AND t.state = 'pending'
            ORDER BY t.id FOR UPDATE OF t SKIP LOCKED""",
        ticket_id,
    )
    if not rows or len(rows) < rows[0]["pending"]:
        return None  # another transaction holds one: try again later
    due = [r for r in rows if r["fire_after"] <= now and r["kind"] in kinds]
    return Timer.from_row(min(due, key=lambda r: (r["fire_after"], r["id"]))) if due else None


async def claim_one(conn: Connection, timer_id: int, now: datetime) -> Timer | None:
    """Lock this timer if it is still pending and due and nobody holds it."""
    row = await conn.fetchrow(
        """SELECT * FROM timers WHERE id = $1 AND state = 'pending' AND fire_after <= $2
            FOR UPDATE SKIP LOCKED""",
        timer_id,
        now,
    )
    return None if row is None else Timer.from_row(row)


async def mark_fired(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    await conn.execute(
        "UPDATE timers SET state = 'fired', fired_at = $2 WHERE id = ANY($1::bigint[])",
        list(ids),
        now,
    )


async def postpone(conn: Connection, timer: Timer, now: datetime, error: str) -> None:
    """A fire handler failed: try again later, backing off (the row stays pending)."""
    delay = min(timedelta(seconds=2**timer.attempts), _LONGEST_RETRY)
    await conn.execute(
        """UPDATE timers SET attempts = attempts + 1, last_error = $2, fire_after = $3
            WHERE id = $1 AND state = 'pending'""",
        timer.id,
        error[:2000],
        now + delay,
    )


async def count_pending(conn: Connection) -> int:
    pending: int = await conn.fetchval("SELECT count(*) FROM timers WHERE state = 'pending'")
    return pending
