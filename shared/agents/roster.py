"""Agents, shifts and auto-assignment (SPEC §3, §5.2), plus the clock everything is given.

The roster is data (排班表, seed 000: "客服部在线时间 9:00-23:30 分为三个班次"): a caller loads it
from YAML or a command and hands the parsed mapping to `Roster.from_mapping`, which refuses
anything it does not understand with an error that says where. Nothing here reads a file or
the clock; `Clock` is the seam through which services get "now".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.tickets import SYSTEM, AgentRef
from shared.tickets.roles import Role

SHOP_TIMEZONE = ZoneInfo("Asia/Shanghai")  # shop local time (§3)


class RosterError(ValueError):
    """The roster data is wrong; the message says where and how."""


@dataclass(frozen=True)
class Shift:
    """A shift (班次) in shop local time: `start` is in, `end` is out.

    Shifts do not cross midnight; the department closes at 23:30 (晚班下班时间 23点30分).
    """

    name: str
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise RosterError(
                f"shift {self.name!r} must start before it ends "
                f"({self.start:%H:%M}-{self.end:%H:%M}); shifts do not cross midnight"
            )

    def covers(self, local: time) -> bool:
        return self.start <= local < self.end


# Seed 000: 白班 9:00-17:30, 半白班 10:00-15:30, 晚班 17:00-23:30.
DAY = Shift("day", time(9, 0), time(17, 30))  # 白班
HALF_DAY = Shift("half_day", time(10, 0), time(15, 30))  # 半白班
NIGHT = Shift("night", time(17, 0), time(23, 30))  # 晚班
SEED_SHIFTS: tuple[Shift, ...] = (DAY, HALF_DAY, NIGHT)


@dataclass(frozen=True)
class Agent:
    """A person who works tickets (客服, 仓库, 财务, 主管). `online` is their presence now."""

    id: str
    name: str
    roles: frozenset[Role]
    shifts: tuple[str, ...] = ()
    online: bool = True

    @property
    def ref(self) -> AgentRef:
        return AgentRef(self.id, self.name)


@dataclass(frozen=True)
class Roster:
    """Who works, in which roles and shifts. Validated when built."""

    agents: tuple[Agent, ...]
    shifts: tuple[Shift, ...] = SEED_SHIFTS
    timezone: ZoneInfo = SHOP_TIMEZONE

    def __post_init__(self) -> None:
        shift_names = [s.name for s in self.shifts]
        if dupes := _duplicates(shift_names):
            raise RosterError(f"shifts: duplicate shift name(s): {', '.join(dupes)}")
        if dupes := _duplicates(a.id for a in self.agents):
            raise RosterError(f"agents: duplicate agent id(s): {', '.join(dupes)}")
        for agent in self.agents:
            where = f"agent {agent.id!r}"
            if agent.id == SYSTEM.id:
                raise RosterError(f"{where}: the id {SYSTEM.id!r} is reserved for ticketq itself")
            if unknown := sorted(set(agent.shifts) - set(shift_names)):
                raise RosterError(
                    f"{where}: unknown shift(s) {', '.join(unknown)} "
                    f"(known: {', '.join(shift_names)})"
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Roster:
        """Build a roster from parsed YAML/JSON; see `tests/agents/test_roster.py` for the shape.

        `shifts` and `timezone` are optional (default: seed 000's shifts, Asia/Shanghai);
        an agent's `online` defaults to true (presence changes it later).
        """
        _only_keys(data, {"agents", "shifts", "timezone"}, "roster")
        shifts = (
            tuple(_shift(name, spec) for name, spec in _mapping(data["shifts"], "shifts").items())
            if "shifts" in data
            else SEED_SHIFTS
        )
        timezone = _timezone(data.get("timezone", SHOP_TIMEZONE.key))
        raw_agents = data.get("agents")
        if not isinstance(raw_agents, list):
            raise RosterError("agents: expected a list of agents")
        agents = tuple(_agent(raw, f"agents[{i}]") for i, raw in enumerate(raw_agents))
        return cls(agents=agents, shifts=shifts, timezone=timezone)

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def with_online(self, agent_id: str, online: bool) -> Roster:
        """The same roster with one agent's presence changed."""
        if self.agent(agent_id) is None:
            raise RosterError(f"no agent {agent_id!r} in the roster")
        agents = tuple(
            Agent(a.id, a.name, a.roles, a.shifts, online) if a.id == agent_id else a
            for a in self.agents
        )
        return Roster(agents=agents, shifts=self.shifts, timezone=self.timezone)

    def local_time(self, at: datetime) -> time:
        if at.tzinfo is None:
            raise ValueError(f"at must be a timezone-aware datetime, got {at!r}")
        return at.astimezone(self.timezone).time()

    def is_staffed(self, at: datetime) -> bool:
        """The department is open: some shift covers `at` (09:00-23:30 with seed 000's)."""
        local = self.local_time(at)
        return any(shift.covers(local) for shift in self.shifts)

    def on_shift(self, agent: Agent, at: datetime) -> bool:
        local = self.local_time(at)
        return any(s.covers(local) for s in self.shifts if s.name in agent.shifts)


def choose_assignee(
    role: Role,
    at: datetime,
    roster: Roster,
    open_counts: Mapping[str, int],
    last_assigned: str | None,
) -> Agent | None:
    """The agent auto-assignment gives the next `role` ticket to (§5.2), or None to wait.

    On shift and online agents of the role, with the fewest open tickets (`open_counts` by
    agent id; absent = 0). Ties go round robin: the first tied agent whose id comes after
    `last_assigned` in sorted order, wrapping around. None outside staffed hours or when
    nobody is available: the ticket waits in the queue.
    """
    if not roster.is_staffed(at):
        return None
    available = sorted(
        (a for a in roster.agents if role in a.roles and a.online and roster.on_shift(a, at)),
        key=lambda a: a.id,
    )
    if not available:
        return None
    fewest = min(open_counts.get(a.id, 0) for a in available)
    tied = [a for a in available if open_counts.get(a.id, 0) == fewest]
    if last_assigned is not None:
        after_last = [a for a in tied if a.id > last_assigned]
        if after_last:
            return after_last[0]
    return tied[0]


def agent_from_row(row: Mapping[str, Any]) -> Agent:
    roles = frozenset(Role(r) for r in row["roles"] if r in {x.value for x in Role})
    return Agent(row["id"], row["name"], roles, tuple(row["shifts"]), bool(row["online"]))


# --------------------------------------------------------------------------------------------
# Reading the mapping


def _shift(name: object, spec: object) -> Shift:
    where = f"shifts.{name}"
    if not isinstance(name, str) or not name:
        raise RosterError(f"shifts: shift names must be non-empty text, got {name!r}")
    fields = _mapping(spec, where)
    _only_keys(fields, {"start", "end"}, where)
    return Shift(
        name,
        _clock_time(fields.get("start"), f"{where}.start"),
        _clock_time(fields.get("end"), f"{where}.end"),
    )


def _agent(raw: object, where: str) -> Agent:
    fields = _mapping(raw, where)
    _only_keys(fields, {"id", "name", "roles", "shifts", "online"}, where)
    agent_id = _text(fields.get("id"), f"{where}.id")
    name = _text(fields.get("name"), f"{where}.name")
    roles = frozenset(
        _role(r, f"{where}.roles") for r in _list(fields.get("roles"), f"{where}.roles")
    )
    if not roles:
        raise RosterError(f"{where}.roles: an agent needs at least one role")
    shifts = tuple(
        _text(s, f"{where}.shifts") for s in _list(fields.get("shifts", []), f"{where}.shifts")
    )
    online = fields.get("online", True)
    if not isinstance(online, bool):
        raise RosterError(f"{where}.online: expected true or false, got {online!r}")
    return Agent(agent_id, name, roles, shifts, online)


def _clock_time(value: object, where: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 17:30 as the number 1050 (base 60).
        raise RosterError(f"{where}: quote clock times, e.g. '17:30' (YAML read a number)")
    if not isinstance(value, str):
        raise RosterError(f"{where}: expected a clock time like '09:00', got {value!r}")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise RosterError(f"{where}: expected a clock time like '09:00', got {value!r}") from None


def _timezone(value: object) -> ZoneInfo:
    if not isinstance(value, str):
        raise RosterError(f"timezone: expected a name like 'Asia/Shanghai', got {value!r}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise RosterError(f"timezone: unknown time zone {value!r}") from None


def _role(value: object, where: str) -> Role:
    if isinstance(value, str) and value in {r.value for r in Role}:
        return Role(value)
    known = ", ".join(r.value for r in Role)
    raise RosterError(f"{where}: unknown role {value!r} (known: {known})")


def _mapping(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise RosterError(f"{where}: expected a mapping, got {value!r}")
    return value


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise RosterError(f"{where}: expected a list, got {value!r}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RosterError(f"{where}: expected non-empty text, got {value!r}")
    return value


def _only_keys(fields: Mapping[str, object], allowed: set[str], where: str) -> None:
    if unknown := sorted(str(key) for key in set(fields) - allowed):
        raise RosterError(
            f"{where}: unknown field(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dupes: list[str] = []
    for value in values:
        if value in seen and value not in dupes:
            dupes.append(value)
        seen.add(value)
    return dupes
