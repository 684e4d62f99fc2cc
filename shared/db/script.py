"""A transaction opened and committed with statements of its own, one round trip each.

asyncpg cannot pipeline statements, and round trips are what the workers' profiles show first
(bench/ratio.py): BEGIN, then the inbox claim, then ... the outbox rows, then COMMIT were four
of them per message. A query sent without arguments goes as one simple-protocol query, which
may hold several statements, so `transaction` sends BEGIN with the opening statements and
COMMIT with the closing ones. Values go into those statements as literals (`literal`,
`render`): the only SQL built from data here, so its quoting rules live in this module alone.

A handler's own writes can join the closing statements too (`later`, `write`): the ticket, its
history and its timers are each one round trip fewer.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from asyncpg.types import Type

from shared.db import Connection

# The connection of the `transaction` under way in this task, and its closing statements.
_open: ContextVar[tuple[Connection, list[str]] | None] = ContextVar("script_open", default=None)
# The connection whose `write`s wait for the COMMIT (`later`).
_deferring: ContextVar[Connection | None] = ContextVar("script_deferring", default=None)
# Each statement's parameter types, as PostgreSQL prepared it (they never change).
_parameters: dict[str, tuple[Type, ...]] = {}
_PARAMETER = re.compile(r"\$(\d+)")


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


def render(sql: str, args: Sequence[Any], types: Sequence[Type]) -> str:
    """`sql` with its parameters `$1`, `$2`... replaced by `args` as literals cast to the
    parameters' `types` (as PostgreSQL prepared `sql`): what asyncpg would have sent, as text.
    Takes the Python types asyncpg takes for those types, and refuses the others."""
    if len(args) != len(types):
        raise TypeError(f"{len(types)} parameters, {len(args)} arguments")
    return _PARAMETER.sub(lambda m: _typed(args[int(m[1]) - 1], types[int(m[1]) - 1]), sql)


def _typed(value: object, pg: Type) -> str:
    if pg.schema != "pg_catalog":
        raise TypeError(f"no literal for type {pg.schema}.{pg.name}")
    if value is None:
        return f"NULL::{pg.name}"
    if pg.kind != "array":
        return f"{_quoted(value, pg.name)}::{pg.name}"
    if not isinstance(value, list | tuple):
        raise TypeError(f"{pg.name} takes a list, not {type(value).__name__}")
    if not value:
        return f"'{{}}'::{pg.name}"
    element = pg.name.removesuffix("[]")
    items = ", ".join("NULL" if v is None else _quoted(v, element) for v in value)
    return f"ARRAY[{items}]::{pg.name}"


def _quoted(value: object, name: str) -> str:
    """`value` in its type's text form, quoted."""
    if name == "bytea":
        if not isinstance(value, bytes):
            raise TypeError(f"bytea takes bytes, not {type(value).__name__}")
        return literal(value).removesuffix("::bytea")
    return literal(_text(value, name))


def _text(value: object, name: str) -> str:
    match name, value:
        case (("json" | "jsonb"), _):
            return json.dumps(value)  # as the pool's codec encodes it (shared.db)
        case (("text" | "varchar" | "bpchar" | "name"), str()):
            return value
        case "bool", bool():
            return "true" if value else "false"
        case (("int2" | "int4" | "int8"), int()) if not isinstance(value, bool):
            return str(value)
        case (("numeric" | "float4" | "float8"), Decimal() | int() | float()) if not isinstance(
            value, bool
        ):
            return repr(value) if isinstance(value, float) else str(value)
        case "timestamptz", datetime() if value.tzinfo is not None:
            return value.isoformat()
        case "timestamp", datetime() if value.tzinfo is None:
            return value.isoformat()
        case "date", date() if not isinstance(value, datetime):
            return value.isoformat()
    raise TypeError(f"no {name} literal for {type(value).__name__} {value!r:.40}")


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
    token = _open.set((conn, closing))
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
    finally:
        _open.reset(token)


@contextmanager
def later(conn: Connection) -> Iterator[None]:
    """Within `transaction` on `conn`: its `write`s are sent with the COMMIT, in order, one
    round trip fewer each. For writes that nothing after them in the transaction reads back,
    and whose errors nobody catches on the way: they surface at the commit, which undoes the
    transaction (the runtime then retries or dead-letters the message, as for any other).
    Elsewhere (a transaction of another kind) the writes go at once."""
    opened = _open.get()
    token = _deferring.set(conn if opened is not None and opened[0] is conn else None)
    try:
        yield
    finally:
        _deferring.reset(token)


async def write(conn: Connection, sql: str, *args: Any) -> None:
    """`conn.execute(sql, *args)`, or within `later(conn)` one more closing statement."""
    opened = _open.get()
    if _deferring.get() is not conn or opened is None:
        await conn.execute(sql, *args)
        return
    types = _parameters.get(sql)
    if types is None:  # once per statement and process: PostgreSQL says what its $n are
        types = _parameters[sql] = tuple((await conn.prepare(sql)).get_parameters())
    opened[1].append(render(sql, args, types))
