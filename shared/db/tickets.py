"""Ticket rows and their append-only history: the statements every service shares."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from asyncpg import Record
from pydantic import TypeAdapter

from shared.db import Connection
from shared.domain.roles import Role, TicketKind
from shared.domain.roster import SEED_SHIFTS, Agent, Roster, Shift
from shared.domain.ticket import Accepted, Ticket, new_ticket


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


async def load_ticket(conn: Connection, ticket_id: str) -> Ticket | None:
    """The ticket aggregate, its row locked until the transaction ends."""
    row = await conn.fetchrow(
        "SELECT id, kind, owner_role, opened_at, state FROM tickets WHERE id = $1 FOR UPDATE",
        ticket_id,
    )
    if row is None:
        return None
    if row["state"] is None:  # as intake left it: queued for its role
        return new_ticket(
            row["id"], TicketKind(row["kind"]), Role(row["owner_role"]), row["opened_at"]
        )
    return _TICKET.validate_python(row["state"])


def ticket_state(ticket: Ticket) -> dict[str, Any]:
    state: dict[str, Any] = _TICKET.dump_python(ticket, mode="json")
    return state


async def save_decision(conn: Connection, accepted: Accepted) -> None:
    """The new state, its queryable columns and its history entry; the row is already locked."""
    t, h = accepted.ticket, accepted.history
    await conn.execute(
        """UPDATE tickets SET state = $2, status = $3, owner_role = $4, owner_agent_id = $5,
               first_handler_id = $6, first_handler_role = $7, version = $8, updated_at = $9
           WHERE id = $1""",
        t.id,
        ticket_state(t),
        t.status.value,
        t.owner.role.value,
        t.owner.agent.id if t.owner.agent else None,
        t.first_handler.id if t.first_handler else None,
        t.first_handler_role.value if t.first_handler else None,
        t.version,
        h.at,
    )
    await append_history(
        conn,
        ticket_id=t.id,
        at=h.at,
        actor_id=h.actor_id,
        actor_name=h.actor_name,
        action=h.action,
        message_id=h.message_id,
        detail=h.detail,
        reason=h.reason,
    )


def _agent(row: Record) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        roles=frozenset(Role(r) for r in row["roles"]),
        shifts=tuple(row["shifts"]),
        online=row["online"],
    )


async def load_shifts(conn: Connection) -> tuple[Shift, ...]:
    """The roster's shifts as last loaded; seed 000's until a roster file is loaded."""
    rows = await conn.fetch("SELECT name, starts, ends FROM roster_shifts ORDER BY starts, name")
    return tuple(Shift(r["name"], r["starts"], r["ends"]) for r in rows) or SEED_SHIFTS


async def save_shifts(conn: Connection, shifts: tuple[Shift, ...]) -> None:
    """Replace the roster's shifts (in the caller's transaction, with the agents naming them)."""
    await conn.execute("DELETE FROM roster_shifts")
    await conn.executemany(
        "INSERT INTO roster_shifts (name, starts, ends) VALUES ($1, $2, $3)",
        [(s.name, s.start, s.end) for s in shifts],
    )


async def load_roster(conn: Connection) -> Roster:
    rows = await conn.fetch("SELECT id, name, roles, shifts, online FROM agents ORDER BY id")
    return Roster(agents=tuple(_agent(r) for r in rows), shifts=await load_shifts(conn))


async def load_agent(conn: Connection, agent_id: str) -> Agent | None:
    row = await conn.fetchrow(
        "SELECT id, name, roles, shifts, online FROM agents WHERE id = $1", agent_id
    )
    return _agent(row) if row else None


async def open_ticket_counts(conn: Connection, role: Role) -> dict[str, int]:
    """Tickets each agent of `role` owns and has not resolved: their load for assignment."""
    rows = await conn.fetch(
        """SELECT owner_agent_id, count(*) AS n FROM tickets
           WHERE owner_role = $1 AND owner_agent_id IS NOT NULL
             AND status NOT IN ('resolved', 'closed')
           GROUP BY owner_agent_id""",
        role.value,
    )
    return {r["owner_agent_id"]: r["n"] for r in rows}
