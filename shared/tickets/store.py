"""Ticket rows and their append-only history: the statements every service shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import TypeAdapter

from shared.db import Connection, xact_lock
from shared.flows.model import order_facts
from shared.tickets import Accepted, HistoryEntry, Ticket, new_ticket
from shared.tickets.roles import Role, TicketKind


async def append_history(
    conn: Connection,
    *,
    ticket_id: str,
    at: datetime,
    actor_id: str,
    actor_name: str,
    action: str,
    message_id: str,
    detail: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO ticket_history
               (ticket_id, at, actor_id, actor_name, action, detail, reason, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        ticket_id,
        at,
        actor_id,
        actor_name,
        action,
        dict(detail or {}),
        reason,
        message_id,
    )


_TICKET = TypeAdapter(Ticket)


async def lock_order(conn: Connection, order_id: str) -> None:
    """Serialises everything done about one order (intake's tickets, follow-ups and order
    events; the platform's events), so none misses a ticket another is opening."""
    await xact_lock(conn, f"order:{order_id}")


async def unfinished_tickets_of_order(conn: Connection, order_id: str) -> list[str]:
    """The ids of the order's tickets that are not resolved or closed, oldest first."""
    rows = await conn.fetch(
        """SELECT id FROM tickets
            WHERE order_id = $1 AND status NOT IN ('resolved', 'closed') ORDER BY id""",
        order_id,
    )
    return [row["id"] for row in rows]


async def order_facts_of(conn: Connection, ticket_id: str) -> dict[str, datetime]:
    """The times of the ticket's order that flow guards read (`shared.flows.model`)."""
    data = await conn.fetchval("SELECT order_data FROM tickets WHERE id = $1", ticket_id)
    return order_facts(data)


# What a ticket row holds beside the aggregate's state: the contact it came from.
CONTACT_COLUMNS = (
    "channel",
    "priority",
    "source",
    "external_id",
    "customer_id",
    "customer",
    "order_id",
    "order_data",
    "subject",
    "body",
    "attachments",
    "opened_at",
)


async def insert_ticket(conn: Connection, opened: Accepted, contact: Mapping[str, Any]) -> None:
    """A ticket born in the aggregate (`open_ticket`): its row, state and first history entry."""
    if set(contact) != set(CONTACT_COLUMNS):
        raise ValueError(f"a new ticket's contact has exactly {', '.join(CONTACT_COLUMNS)}")
    t = opened.ticket
    columns = ("id", "kind", "status", "owner_role", "version", "state", *CONTACT_COLUMNS)
    values = (t.id, t.kind.value, t.status.value, t.owner.role.value, t.version, ticket_state(t))
    await _with_history(
        conn,
        f"INSERT INTO tickets ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})",
        [*values, *(contact[c] for c in CONTACT_COLUMNS)],
        opened.history,
    )


async def load_ticket(
    conn: Connection, ticket_id: str, *, lock_timers: bool = True
) -> Ticket | None:
    """The ticket aggregate, its row locked until the transaction ends.

    Its pending timers are locked first (a firing holds them all from its claim until it
    commits, and locks the ticket after them): a command waits for a firing before it holds
    the ticket, so the two never wait for each other. A firing itself passes
    `lock_timers=False`.
    FOR NO KEY UPDATE: a firing's history rows (their foreign key) never wait for another
    firing.
    """
    loaded = await load_ticket_with(conn, ticket_id, (), lock_timers=lock_timers)
    return None if loaded is None else loaded[0]


async def load_ticket_with(
    conn: Connection, ticket_id: str, columns: Sequence[str], *, lock_timers: bool = True
) -> tuple[Ticket, asyncpg.Record] | None:
    """`load_ticket`, with the row's `columns` read in the same statement (no second trip).

    One statement: the timers are locked in an uncorrelated sub-select, which PostgreSQL runs
    once before it scans the ticket (an InitPlan), so the lock order stays timers first. Having
    waited for a firing there, the ticket's row lock reads the version the firing committed
    (READ COMMITTED rechecks a locked row's newest version). Was two round trips per command;
    the workers' profiles are dominated by round trips (bench/ratio.py).
    """
    if unknown := set(columns) - set(_LOADABLE):
        raise ValueError(f"not a ticket column: {', '.join(sorted(unknown))}")
    timers_first = (
        """AND (SELECT count(*) FROM (SELECT 1 FROM timers
                                       WHERE ticket_id = $1 AND state = 'pending'
                                       ORDER BY id FOR UPDATE) AS locked) >= 0"""
        if lock_timers
        else ""
    )
    row = await conn.fetchrow(
        f"""SELECT {", ".join(("id", "kind", "owner_role", "opened_at", "state", *columns))}
              FROM tickets WHERE id = $1 {timers_first}
           FOR NO KEY UPDATE OF tickets""",
        ticket_id,
    )
    if row is None:
        return None
    if row["state"] is None:  # as intake left it: queued for its role
        ticket = new_ticket(
            row["id"], TicketKind(row["kind"]), Role(row["owner_role"]), row["opened_at"]
        )
    else:
        ticket = _TICKET.validate_python(row["state"])
    return ticket, row


# What `load_ticket_with` may read beside the aggregate (its names go into the SQL).
_LOADABLE = (*CONTACT_COLUMNS, "owner_agent_id", "first_handler_id", "first_handler_role")


def ticket_state(ticket: Ticket) -> dict[str, Any]:
    state: dict[str, Any] = _TICKET.dump_python(ticket, mode="json")
    return state


async def save_decision(conn: Connection, accepted: Accepted) -> None:
    """The new state, its queryable columns and its history entry; the row is already locked."""
    t, h = accepted.ticket, accepted.history
    await _with_history(
        conn,
        """UPDATE tickets SET state = $2, status = $3, owner_role = $4, owner_agent_id = $5,
               first_handler_id = $6, first_handler_role = $7, version = $8, updated_at = $9
           WHERE id = $1""",
        [
            t.id,
            ticket_state(t),
            t.status.value,
            t.owner.role.value,
            t.owner.agent.id if t.owner.agent else None,
            t.first_handler.id if t.first_handler else None,
            t.first_handler_role.value if t.first_handler else None,
            t.version,
            h.at,
        ],
        h,
    )


async def _with_history(
    conn: Connection, ticket_sql: str, args: Sequence[Any], h: HistoryEntry
) -> None:
    """The ticket row's statement and its history entry in one round trip (a data-modifying
    WITH); the entry is written for the row the statement returns. One statement instead of
    two per decision: round trips are what the workers' profiles show first (bench/ratio.py)."""
    n = len(args)
    await conn.execute(
        f"""WITH ticket AS ({ticket_sql} RETURNING id)
            INSERT INTO ticket_history
                (ticket_id, at, actor_id, actor_name, action, detail, reason, message_id)
            SELECT id, {", ".join(f"${n + i}" for i in range(1, 8))} FROM ticket""",
        *args,
        h.at,
        h.actor_id,
        h.actor_name,
        h.action,
        dict(h.detail or {}),
        h.reason,
        h.message_id,
    )


async def open_ticket_counts(conn: Connection, role: Role) -> dict[str, int]:
    """Tickets each agent of `role` owns and has not resolved: their load for assignment.

    Kept per agent by a trigger on `tickets` (migration 0011), so this reads one row per
    agent of the role, however many tickets are open."""
    rows = await conn.fetch(
        "SELECT agent_id, open_tickets FROM agent_load WHERE role = $1 AND open_tickets > 0",
        role.value,
    )
    return {r["agent_id"]: r["open_tickets"] for r in rows}
