"""A roster file's own shifts (SPEC §3): loaded, stored and used for who is on shift."""

from __future__ import annotations

import json
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.agents.store import load_roster
from shared.db import Pool
from tests.staff import Cli

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROSTER = """\
shifts:
  early: {start: '06:00', end: '14:00'}
  late: {start: '14:00', end: '22:00'}
agents:
  - {id: e1, name: 早班, roles: [presale], shifts: [early]}
  - {id: l1, name: 晚班, roles: [presale], shifts: [late]}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_a_roster_s_own_shifts_are_stored_and_decide_who_is_on_shift(
    cli: Cli, db: Pool, tmp_path: Path, desk_worker: None
) -> None:
    loaded = await cli("roster", "load", str(write(tmp_path, "roster.yaml", ROSTER)))
    assert loaded.exit_code == 0, loaded.output

    async with db.acquire() as conn:
        roster = await load_roster(conn)
    assert [(s.name, s.start, s.end) for s in roster.shifts] == [
        ("early", time(6, 0), time(14, 0)),
        ("late", time(14, 0), time(22, 0)),
    ]
    early, late = roster.agent("e1"), roster.agent("l1")
    assert early is not None and late is not None
    six_thirty = datetime(2026, 11, 23, 6, 30, tzinfo=SHANGHAI)
    assert roster.on_shift(early, six_thirty) and not roster.on_shift(late, six_thirty)

    listed = await cli("agent", "list", "--json", "--as", "e1")  # the clock: 10:00 in Shanghai
    assert {a["id"]: a["on_shift"] for a in json.loads(listed.stdout)["agents"]} == {
        "e1": True,
        "l1": False,
    }

    # A calendar may name the roster's shifts.
    calendar = write(
        tmp_path,
        "calendar.yaml",
        "weekly: {presale: {mon-sun: [early, late]}, aftersales: {mon-sun: [early]},"
        " supervisor: {mon-sun: [late]}, warehouse: {mon-fri: [early]},"
        " finance: {mon-fri: [early]}}\n",
    )
    assert (await cli("calendar", "load", str(calendar))).exit_code == 0
    shown = await cli("calendar", "show", "--role", "presale", "--json")
    assert json.loads(shown.stdout)["hours"] == {"presale": ["06:00-22:00"]}


async def test_a_roster_leaving_agents_on_undefined_shifts_is_refused(
    cli: Cli, db: Pool, tmp_path: Path, desk_worker: None
) -> None:
    assert (await cli("roster", "load", str(write(tmp_path, "r.yaml", ROSTER)))).exit_code == 0
    seed_only = write(
        tmp_path,
        "seed.yaml",
        "agents:\n  - {id: d1, name: 白班, roles: [presale], shifts: [day]}\n",
    )

    refused = await cli("roster", "load", str(seed_only))

    assert refused.exit_code == 1
    assert "e1 (early), l1 (late)" in refused.stderr and "nothing was changed" in refused.stderr
    assert await db.fetchval("SELECT count(*) FROM agents") == 2
    assert await db.fetchval("SELECT array_agg(name ORDER BY name) FROM roster_shifts") == [
        "early",
        "late",
    ]
    # With --replace those agents go, and seed 000's shifts are the roster's again.
    assert (await cli("roster", "load", str(seed_only), "--replace")).exit_code == 0
    assert await db.fetchval("SELECT array_agg(name ORDER BY name) FROM roster_shifts") == [
        "day",
        "half_day",
        "night",
    ]


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("end: '14:00'", "end: '05:00'", "line 2: shift 'early' must start before it ends"),
        ("end: '14:00'", "ends: '14:00'", "line 2: shifts.early: unknown field(s) ends"),
        ("start: '06:00'", "start: '6 am'", "line 2: shifts.early.start: expected a clock time"),
        (
            "roles: [presale], shifts: [late]",
            "roles: [cook], shifts: [late]",
            "line 6: agents[1].roles: unknown role 'cook'",
        ),
        ("shifts: [late]", "shifts: [lunch]", "line 6: agent 'l1': unknown shift(s) lunch"),
    ],
)
async def test_a_bad_roster_is_refused_naming_the_line_and_nothing_is_stored(
    cli: Cli, db: Pool, tmp_path: Path, old: str, new: str, error: str, desk_worker: None
) -> None:
    bad = write(tmp_path, "bad.yaml", ROSTER.replace(old, new, 1))

    refused = await cli("roster", "load", str(bad))

    assert refused.exit_code == 1, refused.output
    assert refused.stderr.startswith(f"error: {bad}: {error}"), refused.stderr
    assert await db.fetchval("SELECT count(*) FROM roster_shifts") == 0
    assert await db.fetchval("SELECT count(*) FROM agents") == 0
