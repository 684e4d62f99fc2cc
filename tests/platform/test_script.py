"""`shared.db.script`: literals PostgreSQL reads as asyncpg's parameters, and writes that go
with the COMMIT, against the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from shared.db import Pool, script

AWKWARD = 'it\'s \\ "quoted" 100% $1 -- /* not */ ; 你好 🎫 \n\t end'


@pytest.mark.parametrize(
    ("sql_type", "value"),
    [
        ("text", AWKWARD),
        ("text", ""),
        ("text", None),
        ("jsonb", {"text": AWKWARD, "n": [1, 2.5, None, True], "nested": {"q": "'"}}),
        ("jsonb", [{"id": "a"}, {"id": "b'"}]),
        ("jsonb", AWKWARD),
        ("jsonb", None),
        ("timestamptz", datetime(2026, 11, 30, 5, 6, 7, 891011, tzinfo=UTC)),
        ("timestamptz", datetime(2026, 1, 1, 23, 59, tzinfo=timezone(timedelta(hours=8)))),
        ("timestamp", datetime(2026, 11, 30, 5, 6, 7, 1)),
        ("date", date(2026, 11, 11)),
        ("int4", -2_147_483_648),
        ("int8", 9_223_372_036_854_775_807),
        ("numeric", Decimal("12345678901234567890.1234567890")),
        ("numeric", Decimal("1E+2")),
        ("float8", 0.1),
        ("bool", False),
        ("bytea", b"\x00\x01'\\\xff"),
        ("text[]", ["a", "b'c", AWKWARD, None, ""]),
        ("text[]", []),
        ("timestamptz[]", [datetime(2026, 11, 11, tzinfo=UTC)]),
    ],
)
async def test_a_rendered_value_reads_back_as_asyncpg_sends_it(
    db: Pool, sql_type: str, value: Any
) -> None:
    sql = f"SELECT $1::{sql_type}"
    async with db.acquire() as conn:
        types = (await conn.prepare(sql)).get_parameters()
        rendered = script.render(sql, [value], types)
        assert await conn.fetchval(rendered) == await conn.fetchval(sql, value)
        # What PostgreSQL stored, compared as text: equal values, not only equal in Python.
        as_text = f"SELECT ($1::{sql_type})::text"
        rendered_text = script.render(as_text, [value], types)
        assert await conn.fetchval(rendered_text) == await conn.fetchval(as_text, value)


@pytest.mark.parametrize(
    ("sql_type", "value"),
    [
        ("text", 5),
        ("int4", "5"),
        ("int4", True),
        ("timestamptz", datetime(2026, 11, 30)),  # naive: whose time zone?
        ("bytea", "text"),
        ("text[]", "not a list"),
        ("text", "nul \x00 inside"),
    ],
)
async def test_a_value_asyncpg_would_refuse_is_refused(db: Pool, sql_type: str, value: Any) -> None:
    sql = f"SELECT $1::{sql_type}"
    async with db.acquire() as conn:
        types = (await conn.prepare(sql)).get_parameters()
    with pytest.raises((TypeError, ValueError)):
        script.render(sql, [value], types)


async def test_writes_within_later_go_with_the_commit_in_order(db: Pool) -> None:
    await db.execute("CREATE TABLE later_test (n int PRIMARY KEY, note text)")
    insert = "INSERT INTO later_test (n, note) VALUES ($1, $2)"
    async with db.acquire() as conn:
        async with script.transaction(conn, "SELECT 1") as (_, closing):
            with script.later(conn):
                await script.write(conn, insert, 1, "it's later")
                await script.write(conn, "UPDATE later_test SET note = $2 WHERE n = $1", 1, "2nd")
            await script.write(conn, insert, 2, "now")  # outside `later`: at once
            assert await conn.fetchval("SELECT count(*) FROM later_test") == 1
            assert len(closing) == 2
        rows = await conn.fetch("SELECT n, note FROM later_test ORDER BY n")
    assert [tuple(r) for r in rows] == [(1, "2nd"), (2, "now")]


async def test_a_deferred_write_that_fails_undoes_the_whole_transaction(db: Pool) -> None:
    await db.execute("CREATE TABLE later_test (n int PRIMARY KEY)")
    async with db.acquire() as conn:
        with pytest.raises(Exception, match="duplicate key"):
            async with script.transaction(conn, "INSERT INTO later_test VALUES (1)") as _:
                with script.later(conn):
                    await script.write(conn, "INSERT INTO later_test VALUES ($1)", 1)
        assert not conn.is_in_transaction()
    assert await db.fetchval("SELECT count(*) FROM later_test") == 0


async def test_later_outside_a_script_transaction_writes_at_once(db: Pool) -> None:
    await db.execute("CREATE TABLE later_test (n int PRIMARY KEY)")
    async with db.acquire() as conn, conn.transaction():
        with script.later(conn):
            await script.write(conn, "INSERT INTO later_test VALUES ($1)", 1)
        assert await conn.fetchval("SELECT count(*) FROM later_test") == 1
