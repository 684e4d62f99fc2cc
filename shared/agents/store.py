"""The roster in PostgreSQL: agents, their roles, shifts and presence."""

from __future__ import annotations

from typing import Any

from shared.agents.roster import SEED_SHIFTS, Agent, Roster, Shift, agent_from_row
from shared.db import Connection, script


class RosterRefused(Exception):
    """The change would break the roster's rules; nothing was changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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


async def apply_roster(
    conn: Connection, roster: Roster, sets_online: set[str], *, replace: bool
) -> dict[str, list[str]]:
    """Upsert the roster's agents and replace its shifts in one transaction; with `replace`,
    remove the other agents.

    An existing agent keeps their presence unless the file sets `online`. Removing an agent
    who owns or tracks an unfinished ticket is refused: a supervisor reassigns those first; so
    is leaving an agent the file does not name on a shift it no longer defines.
    """
    added: list[str] = []
    updated: list[str] = []
    removed: list[str] = []
    async with script.savepoint(conn, "roster"):  # a refusal undoes it all
        for agent in roster.agents:
            inserted = await conn.fetchval(
                """INSERT INTO agents (id, name, roles, shifts, online)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (id) DO UPDATE
                      SET name = EXCLUDED.name, roles = EXCLUDED.roles,
                          shifts = EXCLUDED.shifts,
                          online = CASE WHEN $6 THEN EXCLUDED.online ELSE agents.online END,
                          updated_at = now()
                   RETURNING xmax = 0""",
                agent.id,
                agent.name,
                sorted(r.value for r in agent.roles),
                list(agent.shifts),
                agent.online,
                agent.id in sets_online,
            )
            (added if inserted else updated).append(agent.id)
        if replace:
            keep = [a.id for a in roster.agents]
            busy = await conn.fetch(
                """SELECT a.id, count(t.id) AS n
                     FROM agents a
                     JOIN tickets t ON t.status <> 'closed'
                                   AND (t.owner_agent_id = a.id OR t.first_handler_id = a.id)
                    WHERE NOT a.id = ANY($1::text[])
                    GROUP BY a.id ORDER BY a.id""",
                keep,
            )
            if busy:
                who = ", ".join(f"{r['id']} ({r['n']})" for r in busy)
                raise RosterRefused(
                    "agents_busy",
                    "--replace would remove agents who own or track unfinished tickets: "
                    f"{who}; reassign those tickets first (nothing was changed)",
                )
            rows = await conn.fetch(
                "DELETE FROM agents WHERE NOT id = ANY($1::text[]) RETURNING id", keep
            )
            removed = sorted(r["id"] for r in rows)
        await save_shifts(conn, roster.shifts)
        stranded = await conn.fetch(
            """SELECT id, array_agg(s ORDER BY s) AS shifts FROM agents, unnest(shifts) s
                WHERE s NOT IN (SELECT name FROM roster_shifts) GROUP BY id ORDER BY id"""
        )
        if stranded:
            who = ", ".join(f"{r['id']} ({', '.join(r['shifts'])})" for r in stranded)
            raise RosterRefused(
                "invalid_roster",
                f"agents not in the file work shifts it does not define: {who}; add those "
                "shifts or agents, or use --replace (nothing was changed)",
            )
    return {"added": added, "updated": updated, "removed": removed}


async def set_online(conn: Connection, agent_id: str, online: bool) -> dict[str, Any]:
    row = await conn.fetchrow(
        """UPDATE agents SET online = $2, updated_at = now() WHERE id = $1
           RETURNING id, name, online""",
        agent_id,
        online,
    )
    if row is None:
        raise RosterRefused("unknown_agent", f"no agent {agent_id!r} in the roster")
    return dict(row)
