"""The database's side of setup: one role per principal, the schema owned by a migration role,
and each role granted exactly its tables (`grants.TABLES`).

Roles are cluster-wide, grants per database: setup run against another database of the same
cluster reuses the roles and grants there. Everything is set to what the data says, not added
to it: run twice, the same roles and grants.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import asyncpg
import structlog

from shared.db import Connection
from shared.setup.grants import PRIVILEGES, SEQUENCES, TABLES

log = structlog.get_logger(__name__)


def login_of(database_url: str) -> tuple[str, str]:
    """(role, password) a PostgreSQL URL signs in with."""
    parts = urlsplit(database_url)
    if not parts.username or parts.password is None:
        raise ValueError(f"{parts.hostname}: the PostgreSQL URL names no user and password")
    return unquote(parts.username), unquote(parts.password)


async def ensure_role(conn: Connection, role: str, password: str) -> None:
    """A login role with this password, created with no other power (PostgreSQL's defaults:
    no superuser, createdb, createrole, replication). Another setup may create it meanwhile."""
    exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        try:
            await conn.execute(
                await _format(conn, "CREATE ROLE %I LOGIN PASSWORD %L", role, password)
            )
            return
        except asyncpg.DuplicateObjectError:
            pass
    await conn.execute(await _format(conn, "ALTER ROLE %I LOGIN PASSWORD %L", role, password))


async def _format(conn: Connection, template: str, *args: str) -> str:
    """A statement with its identifiers and literals quoted by PostgreSQL's `format`."""
    params = ", ".join(f"${i}::text" for i in range(1, len(args) + 1))
    statement: str = await conn.fetchval(f"SELECT format('{template}', {params})", *args)
    return statement


async def hand_schema_to(conn: Connection, migrator: str) -> None:
    """Let the migration role own the schema: CREATE in it, and the objects the admin made
    (a database migrated before roles existed). The admin becomes a member, to hand them over
    and to grant as their owner."""
    await conn.execute(f'GRANT "{migrator}" TO CURRENT_USER')
    await conn.execute(f'GRANT USAGE, CREATE ON SCHEMA public TO "{migrator}"')
    mine = "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
    relations = await conn.fetch(
        f"""SELECT c.oid::regclass::text AS name, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relowner = {mine}
               AND c.relkind IN ('r', 'p', 'v', 'S')
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid
                                 AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
             ORDER BY 1"""  # a table's own sequences follow it (not listed)
    )
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "S": "SEQUENCE"}
    for row in relations:
        await conn.execute(f'ALTER {kinds[row["relkind"]]} {row["name"]} OWNER TO "{migrator}"')
    for function in await conn.fetch(
        f"""SELECT oid::regprocedure::text AS name FROM pg_proc
             WHERE pronamespace = 'public'::regnamespace AND proowner = {mine}"""
    ):
        await conn.execute(f'ALTER FUNCTION {function["name"]} OWNER TO "{migrator}"')


async def grant(conn: Connection, roles: Mapping[str, str]) -> None:
    """Set each principal's role (`roles`: principal → role) to exactly its tables' privileges,
    in one transaction (a running worker never sees a moment without them). Run as the owner."""
    existing = {
        r["relname"]
        for r in await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        )
    }
    async with conn.transaction():
        for principal, role in roles.items():
            tables = TABLES.get(principal, {})
            if missing := sorted(set(tables) - existing):
                raise RuntimeError(f"{principal}: no table {', '.join(missing)} (migrate first)")
            await conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
            await conn.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"')
            for table, letters in tables.items():
                privileges = ", ".join(PRIVILEGES[p] for p in letters)
                await conn.execute(f'GRANT {privileges} ON "{table}" TO "{role}"')
            inserts = [t for t, letters in tables.items() if "I" in letters]
            sequences = [s for s, users in SEQUENCES.items() if principal in users]
            sequences += [r["relname"] for r in await _owned_sequences(conn, inserts)]
            for sequence in sequences:
                await conn.execute(f'GRANT USAGE ON SEQUENCE "{sequence}" TO "{role}"')
            log.info("grants_set", principal=principal, role=role, tables=len(tables))


async def _owned_sequences(conn: Connection, tables: list[str]) -> list[asyncpg.Record]:
    """The id sequences of these tables (bigserial, identity): inserting into one needs them."""
    return await conn.fetch(
        """SELECT s.relname FROM pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_class t ON t.oid = d.refobjid
            WHERE d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
              AND t.relnamespace = 'public'::regnamespace AND t.relname = ANY($1)""",
        tables,
    )
