"""The roster in PostgreSQL: agents, their roles, shifts and presence."""

from __future__ import annotations

from shared.agents.roster import SEED_SHIFTS, Agent, Roster, Shift, agent_from_row
from shared.db import Connection


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
    return Roster(
        agents=tuple(agent_from_row(dict(r)) for r in rows), shifts=await load_shifts(conn)
    )


async def shift_roster(conn: Connection) -> Roster:
    """A roster with the stored shifts, for asking who is on shift (agents need not be in it)."""
    return Roster(agents=(), shifts=await load_shifts(conn))


async def load_agent(conn: Connection, agent_id: str) -> Agent | None:
    row = await conn.fetchrow(
        "SELECT id, name, roles, shifts, online FROM agents WHERE id = $1", agent_id
    )
    return agent_from_row(dict(row)) if row else None
