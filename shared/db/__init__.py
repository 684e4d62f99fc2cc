"""PostgreSQL, the system of record: connection pool and ordered plain-SQL migrations."""

from __future__ import annotations

import json
from importlib import resources
from typing import TypeAlias

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from shared.config import Settings

log = structlog.get_logger(__name__)

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
# A plain connection or one borrowed from the pool: handlers accept either.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# Serialises concurrent migrators (several replicas starting at once).
_MIGRATION_LOCK = 0x71C4E7


async def _init_connection(conn: Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: Connection) -> None:
    """Our statements leave no session state behind (no SET, LISTEN, session advisory locks
    or cursors outside transactions), so asyncpg's reset round trip on every release is
    skipped; its local clean-up still runs."""


async def xact_lock(conn: Connection, key: str) -> None:
    """A lock on `key` held until the transaction ends (a PostgreSQL advisory lock): serialises
    what two replicas must not do at once."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def create_pool(settings: Settings, *, size: int | None = None) -> Pool:
    size = size or settings.db_pool_size
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=1,
        max_size=size,
        init=_init_connection,
        reset=_keep_session,
        # `shared.db.script.literal` quotes for this (PostgreSQL's default, made sure of).
        server_settings={"standard_conforming_strings": "on"},
    )
    assert pool is not None
    return pool


def migrations() -> list[tuple[str, str]]:
    """(name, sql) of every migration file, in the order they apply."""
    folder = resources.files("shared.db") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def migrate(database_url: str) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their names."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   name text PRIMARY KEY,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        applied = []
        for name, sql in migrations():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            log.info("migration_applied", migration=name)
            applied.append(name)
        return applied
    finally:
        await conn.close()
