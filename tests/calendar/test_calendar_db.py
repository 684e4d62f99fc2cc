"""Calendar versions in PostgreSQL and `ticketq calendar load|show` against the real database."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from shared.calendar import DayKind, parse_calendar, sample_calendar
from shared.calendar.store import load_calendar, save_calendar
from shared.db import Pool
from tests.helpers import add_agents
from tests.staff import Cli

pytestmark = pytest.mark.integration

SAMPLE_FILE = Path(str(resources.files("shared.calendar").joinpath("sample.yaml")))
BERLIN = """\
timezone: Europe/Berlin
weekly:
  presale: {mon-fri: ['09:00-17:00']}
  aftersales: {mon-fri: ['09:00-17:00']}
  supervisor: {mon-fri: ['09:00-17:00']}
  warehouse: {mon-fri: ['09:00-17:00']}
  finance: {mon-fri: ['09:00-17:00']}
"""


@pytest.fixture
async def reader(db: Pool, desk_worker: None) -> tuple[str, str]:
    """A desk answering reads (`calendar show` asks one), and an agent to sign them."""
    await add_agents(db, [("r1", "读者", ["presale"], ["day"])])
    return ("--as", "r1")


async def test_the_newest_version_is_the_calendar_and_the_sample_stands_in_for_none(
    db: Pool,
) -> None:
    async with db.acquire() as conn:
        assert await load_calendar(conn) == sample_calendar()
        first = await save_calendar(conn, sample_calendar(), "sample.yaml")
        berlin = parse_calendar(BERLIN)
        second = await save_calendar(conn, berlin, "berlin.yaml")
        assert second == first + 1
        assert await load_calendar(conn) == berlin
        rows = await conn.fetch("SELECT version, source FROM calendar_versions ORDER BY version")
    assert [(r["version"], r["source"]) for r in rows] == [
        (first, "sample.yaml"),
        (second, "berlin.yaml"),
    ]


async def test_calendar_load_stores_a_version_and_show_reads_it(
    cli: Cli, db: Pool, reader: tuple[str, str]
) -> None:
    loaded = await cli("calendar", "load", str(SAMPLE_FILE))
    assert loaded.exit_code == 0, loaded.output
    assert loaded.stdout.strip() == f"loaded {SAMPLE_FILE} as calendar version 1"

    singles = await cli("calendar", "show", "--date", "2026-11-11", "--json", *reader)
    assert singles.exit_code == 0, singles.output
    day = json.loads(singles.stdout)
    assert (day["date"], day["kind"], day["name"]) == ("2026-11-11", "special", "双11 Singles' Day")
    assert day["hours"]["presale"] == ["00:00-02:00", "08:00-24:00"]
    assert set(day["hours"]) == {"presale", "aftersales", "warehouse", "finance", "supervisor"}

    makeup = await cli("calendar", "show", "--date", "2026-10-10", "--role", "warehouse", *reader)
    assert makeup.exit_code == 0, makeup.output
    assert "2026-10-10 (sat, Asia/Shanghai)" in makeup.stdout
    assert "makeup: 国庆节调休" in makeup.stdout and "09:00-17:30" in makeup.stdout
    assert "presale" not in makeup.stdout

    today = await cli("calendar", "show", "--json", *reader)  # the CLI's clock: Monday 2026-11-23
    assert json.loads(today.stdout)["date"] == "2026-11-23"
    assert json.loads(today.stdout)["kind"] == DayKind.REGULAR


async def test_a_bad_calendar_file_names_the_line_and_changes_nothing(
    cli: Cli, db: Pool, tmp_path: Path, reader: tuple[str, str]
) -> None:
    berlin = tmp_path / "berlin.yaml"
    berlin.write_text(BERLIN, encoding="utf-8")
    assert (await cli("calendar", "load", str(berlin))).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        BERLIN.replace("finance: {mon-fri: ['09:00-17:00']}", "finance: {mon: [x]}"),
        encoding="utf-8",
    )

    refused = await cli("calendar", "load", str(bad))

    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        f"error: {bad}: line 7: weekly.finance.mon: unknown shift 'x' (known: day, half_day, night)"
    )
    assert await db.fetchval("SELECT count(*) FROM calendar_versions") == 1
    async with db.acquire() as conn:
        assert (await load_calendar(conn)).timezone.key == "Europe/Berlin"
    shown = await cli("calendar", "show", "--date", "2026-11-28", "--json", *reader)  # a Saturday
    assert json.loads(shown.stdout)["hours"]["presale"] == []


async def test_calendar_show_without_any_version_shows_the_sample(
    cli: Cli, reader: tuple[str, str]
) -> None:
    shown = await cli(
        "calendar", "show", "--date", str(date(2026, 10, 1)), "--role", "presale", *reader
    )
    assert shown.exit_code == 0, shown.output
    assert "holiday: 国庆节 National Day" in shown.stdout and "10:00-22:00" in shown.stdout
