"""A transaction opened and committed with statements of its own, one round trip each.

asyncpg cannot pipeline statements, and round trips are what the workers' profiles show first
(bench/ratio.py): BEGIN, then the inbox claim, then ... the outbox rows, then COMMIT were four
of them per message. A query sent without arguments goes as one simple-protocol query, which
may hold several statements, so `transaction` sends BEGIN with the opening statements and
COMMIT with the closing ones. Values go into those statements as literals (`literal`): the
only SQL built from data here, so its quoting rules live in this module alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from shared.db import Connection


def literal(value: str | bytes | None) -> str:
    """`value` as an SQL literal: text quoted (a quote doubled: with standard-conforming
    strings, which every pool connection sets, nothing else is special), bytes as bytea hex,
    NULL for None."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if "\x00" in value:
        raise ValueError("a text literal cannot hold NUL")
    return "'" + value.replace("'", "''") + "'"


def insert(table: str, columns: Sequence[str], rows: Sequence[Sequence[str | bytes | None]]) -> str:
    """`INSERT INTO table (columns) VALUES ...` for `rows` of literal values."""
    values = ", ".join("(" + ", ".join(map(literal, row)) + ")" for row in rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}"


@asynccontextmanager
async def savepoint(conn: Connection, name: str) -> AsyncIterator[None]:
    """Within the transaction: what the body wrote is undone if it raises (never released:
    COMMIT does that, and RELEASE would be one more round trip)."""
    await conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        await conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
        raise


@asynccontextmanager
async def transaction(conn: Connection, opening: str) -> AsyncIterator[tuple[str, list[str]]]:
    """BEGIN with `opening` (its status, e.g. `INSERT 0 1`, is yielded), then the body, then the
    closing statements (the yielded list, which the body adds to) with COMMIT; ROLLBACK if
    anything fails, the commit included.

    Not asyncpg's `conn.transaction()`, which refuses to nest in a transaction it did not
    start: code run inside takes its savepoints with `savepoint`.
    """
    closing: list[str] = []
    try:
        status = await conn.execute(f"BEGIN; {opening}")
        yield status, closing
        await conn.execute("; ".join([*closing, "COMMIT"]))
    except BaseException:
        if conn.is_in_transaction():
            try:
                await conn.execute("ROLLBACK")
            except BaseException:
                conn.terminate()  # never back to the pool with a transaction open
                raise
        raise
