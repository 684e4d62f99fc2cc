"""Shifts, staffed hours and auto-assignment (SPEC §3, §5.2)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from shared.agents.roster import (
    DAY,
    SEED_SHIFTS,
    Agent,
    Roster,
    RosterError,
    Shift,
    choose_assignee,
)
from shared.clock import Clock, FixedClock, SystemClock
from shared.tickets.roles import Role

SHANGHAI = ZoneInfo("Asia/Shanghai")

ROSTER_YAML = """
agents:
  - id: a1
    name: Li Na
    roles: [presale]
    shifts: [day]
  - id: a2
    name: Zhao Lei
    roles: [presale]
    shifts: [day, night]
  - id: a3
    name: Ma Li
    roles: [presale]
    shifts: [half_day]
  - id: a4
    name: Xu Tao
    roles: [presale]
    shifts: [night]
  - id: s1
    name: Chen Jing
    roles: [aftersales, supervisor]
    shifts: [day]
    online: false
"""


def shop(hour: int, minute: int = 0) -> datetime:
    """A Monday in shop local time."""
    return datetime(2024, 6, 3, hour, minute, tzinfo=SHANGHAI)


def roster() -> Roster:
    return Roster.from_mapping(yaml.safe_load(ROSTER_YAML))


# --- shifts and staffed hours ------------------------------------------------------------------


def test_the_seed_shifts() -> None:
    assert [(s.name, s.start, s.end) for s in SEED_SHIFTS] == [
        ("day", time(9, 0), time(17, 30)),
        ("half_day", time(10, 0), time(15, 30)),
        ("night", time(17, 0), time(23, 30)),
    ]


@pytest.mark.parametrize(
    ("local", "covered"),
    [((8, 59), False), ((9, 0), True), ((17, 29), True), ((17, 30), False)],
)
def test_a_shift_includes_its_start_and_excludes_its_end(
    local: tuple[int, int], covered: bool
) -> None:
    assert DAY.covers(time(*local)) is covered


@pytest.mark.parametrize(
    ("local", "staffed"),
    [((8, 59), False), ((9, 0), True), ((17, 15), True), ((23, 29), True), ((23, 30), False)],
)
def test_the_department_is_staffed_from_9_to_23_30(local: tuple[int, int], staffed: bool) -> None:
    assert roster().is_staffed(shop(*local)) is staffed


def test_staffed_hours_are_shop_local_whatever_the_zone_of_the_instant() -> None:
    # 01:00 UTC is 09:00 in Shanghai; 15:30 UTC is 23:30 there.
    assert roster().is_staffed(datetime(2024, 6, 3, 1, 0, tzinfo=UTC))
    assert not roster().is_staffed(datetime(2024, 6, 3, 15, 30, tzinfo=UTC))


def test_on_shift_follows_the_agents_shifts() -> None:
    team = roster()
    li_na, zhao_lei = team.agent("a1"), team.agent("a2")
    assert li_na is not None and zhao_lei is not None
    assert team.on_shift(li_na, shop(9, 0))
    assert not team.on_shift(li_na, shop(17, 30))
    assert team.on_shift(zhao_lei, shop(17, 30))  # night shift
    assert not team.on_shift(zhao_lei, shop(23, 30))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        roster().is_staffed(datetime(2024, 6, 3, 10, 0))


# --- auto-assignment ---------------------------------------------------------------------------


def test_the_agent_with_the_fewest_open_tickets_is_chosen() -> None:
    chosen = choose_assignee(
        Role.PRESALE,
        shop(11),
        roster(),
        open_counts={"a1": 3, "a2": 1, "a3": 2},
        last_assigned=None,
    )
    assert chosen is not None and chosen.id == "a2"


def test_an_agent_missing_from_the_counts_has_no_open_tickets() -> None:
    chosen = choose_assignee(
        Role.PRESALE, shop(11), roster(), open_counts={"a1": 1, "a2": 1}, last_assigned=None
    )
    assert chosen is not None and chosen.id == "a3"


def test_ties_go_round_robin_in_id_order_wrapping_around() -> None:
    team = roster()

    def next_after(last: str | None) -> str | None:
        chosen = choose_assignee(Role.PRESALE, shop(11), team, {}, last_assigned=last)
        return None if chosen is None else chosen.id

    # At 11:00 a1 (day), a2 (day) and a3 (half-day) are on shift; a4 works nights.
    assert next_after(None) == "a1"
    assert next_after("a1") == "a2"
    assert next_after("a2") == "a3"
    assert next_after("a3") == "a1"
    assert next_after("a4") == "a1"  # someone no longer in the running
    assert next_after("a15") == "a2"  # the order is the ids' sorted order


def test_round_robin_is_among_the_tied_only() -> None:
    chosen = choose_assignee(
        Role.PRESALE, shop(11), roster(), open_counts={"a2": 4}, last_assigned="a1"
    )
    assert chosen is not None and chosen.id == "a3"  # a2 has more open tickets


def test_offline_and_off_shift_agents_are_not_chosen() -> None:
    team = roster()
    # At 20:00 a1 (day) and a3 (half-day) have gone home; a2 and a4 work the night shift.
    chosen_at_night = set()
    for last in (None, "a1", "a2", "a3", "a4"):
        chosen = choose_assignee(Role.PRESALE, shop(20), team, {}, last_assigned=last)
        assert chosen is not None
        chosen_at_night.add(chosen.id)
    assert chosen_at_night == {"a2", "a4"}
    # Chen Jing is the only after-sales agent and is offline.
    assert choose_assignee(Role.AFTERSALES, shop(11), team, {}, last_assigned=None) is None
    online = team.with_online("s1", True)
    chosen = choose_assignee(Role.AFTERSALES, shop(11), online, {}, last_assigned=None)
    assert chosen is not None and chosen.id == "s1"
    assert chosen.ref.name == "Chen Jing"


def test_nobody_is_chosen_outside_staffed_hours() -> None:
    team = Roster(
        agents=(Agent("a1", "Li Na", frozenset({Role.PRESALE}), ("always",)),),
        shifts=(Shift("always", time(0, 0), time(23, 59)),),
    )
    assert choose_assignee(Role.PRESALE, shop(3), team, {}, last_assigned=None) is not None
    assert choose_assignee(Role.PRESALE, shop(8, 59), roster(), {}, None) is None
    assert choose_assignee(Role.PRESALE, shop(23, 30), roster(), {}, None) is None


def test_nobody_is_chosen_for_a_role_without_agents() -> None:
    assert choose_assignee(Role.FINANCE, shop(11), roster(), {}, last_assigned=None) is None


# --- loading the roster ------------------------------------------------------------------------


def test_a_roster_loads_from_yaml_shaped_data() -> None:
    team = roster()
    assert [a.id for a in team.agents] == ["a1", "a2", "a3", "a4", "s1"]
    chen = team.agent("s1")
    assert chen == Agent(
        "s1", "Chen Jing", frozenset({Role.AFTERSALES, Role.SUPERVISOR}), ("day",), online=False
    )
    assert team.shifts == SEED_SHIFTS
    assert team.timezone == SHANGHAI


def test_shifts_and_timezone_may_be_given() -> None:
    team = Roster.from_mapping(
        yaml.safe_load(
            """
timezone: Asia/Shanghai
shifts:
  early: {start: "08:00", end: "12:00"}
agents:
  - {id: a1, name: Li Na, roles: [presale], shifts: [early]}
"""
        )
    )
    assert team.shifts == (Shift("early", time(8, 0), time(12, 0)),)
    assert team.is_staffed(shop(8)) and not team.is_staffed(shop(12))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("agents:\n  - {id: a1, name: A, roles: [presale], shifts: [evening]}", "unknown shift"),
        (
            "agents:\n  - {id: a1, name: A, roles: [presale]}"
            "\n  - {id: a1, name: B, roles: [presale]}",
            "duplicate agent id",
        ),
        ("agents:\n  - {id: a1, name: A, roles: [cashier]}", r"agents\[0\]\.roles: unknown role"),
        ("agents:\n  - {id: a1, name: A, roles: []}", "at least one role"),
        ("agents:\n  - {id: a1, roles: [presale]}", r"agents\[0\]\.name"),
        ("agents:\n  - {id: a1, name: A, roles: [presale], onlin: true}", "unknown field"),
        ("agents:\n  - {id: a1, name: A, roles: [presale], online: maybe}", "true or false"),
        ("agents:\n  - {id: system, name: A, roles: [presale]}", "reserved"),
        ("staff: []", "unknown field"),
        ("{}", "agents: expected a list"),
        ("shifts:\n  late: {start: '18:00', end: 23:59}\nagents: []", "quote clock times"),
        ("shifts:\n  late: {start: '18:00', end: 'soon'}\nagents: []", "clock time like"),
        ("shifts:\n  late: {start: '23:00', end: '01:00'}\nagents: []", "do not cross midnight"),
        ("timezone: Mars/Olympus\nagents: []", "unknown time zone"),
    ],
)
def test_bad_roster_data_gets_a_clear_error(text: str, error: str) -> None:
    with pytest.raises(RosterError, match=error):
        Roster.from_mapping(yaml.safe_load(text))


# --- clocks ------------------------------------------------------------------------------------


def test_a_fixed_clock_stands_still_until_moved() -> None:
    clock: Clock = FixedClock(shop(9))
    assert clock.now() == shop(9)
    assert isinstance(clock, FixedClock)
    assert clock.advance(timedelta(minutes=30)) == shop(9, 30)
    clock.set(shop(23, 30))
    assert clock.now() == shop(23, 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2024, 6, 3, 9, 0))


def test_the_system_clock_is_aware() -> None:
    clock: Clock = SystemClock()
    assert clock.now().tzinfo is not None
