"""Reading a shop calendar from YAML; every refusal names the line of the file.

The file is walked as YAML nodes (`yaml.compose`), not as parsed data, so each value keeps its
line and an unquoted `17:30` or `2026-10-01` stays the text it was written as. The shape, as in
`shared/calendar/sample.yaml`:

    timezone: Asia/Shanghai            # optional, the default
    weekly:                            # every role; days `mon`..`sun` or a range `mon-fri`
      presale: {mon-sun: [day, night]} # roster shift names, or spans like '09:00-12:00'
    holidays:                          # 法定节假日: `date`, or `from` and `to`
      - {name: 国庆节, from: 2026-10-01, to: 2026-10-07, hours: {presale: ['10:00-22:00']}}
    makeup_days:                       # 调休上班: a Saturday or Sunday worked as `works_as`
      - {date: 2026-10-10, works_as: fri, name: 国庆节调休}
    special_days:                      # own hours; `date` YYYY-MM-DD, or MM-DD every year
      - {name: 双11, date: 11-11, hours: {presale: ['00:00-02:00', '08:00-24:00']}}

Roles a holiday or special day lists are staffed with those hours; the others are closed that
day (a holiday without `hours` is closed for everyone). Named shifts may overlap each other (the
day and night shifts share their handover) and are merged; a span written out must overlap
nothing else that day.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from shared.agents.roster import SEED_SHIFTS, SHOP_TIMEZONE, Shift
from shared.calendar.model import (
    WEEKDAYS,
    Calendar,
    CalendarError,
    DayRule,
    Hours,
    MakeUpDay,
    Span,
)
from shared.tickets.roles import Role

# libyaml when built in: composing the sample takes 1 ms instead of 12.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH_DAY = re.compile(r"\d{2}-\d{2}")


def shift_spans(shifts: Iterable[Shift]) -> dict[str, Span]:
    """Roster shifts by name, as the spans a calendar file may name."""
    return {
        s.name: Span(
            s.start.hour * 3600 + s.start.minute * 60 + s.start.second,
            s.end.hour * 3600 + s.end.minute * 60 + s.end.second,
        )
        for s in shifts
    }


def parse_calendar(text: str, *, shifts: Mapping[str, Span] | None = None) -> Calendar:
    """The calendar written in `text` (YAML), or `CalendarError` naming the line.

    `shifts` are the roster shifts the file may name (default: seed 000's day, half_day, night).
    """
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark else ""
        raise CalendarError(f"{line}not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CalendarError(f"not valid YAML: {exc}") from None
    if root is None:
        raise CalendarError("line 1: the file is empty")
    return _Reader(shift_spans(SEED_SHIFTS) if shifts is None else shifts).calendar(root)


@cache
def sample_calendar() -> Calendar:
    """The packaged sample (`shared/calendar/sample.yaml`): seed 000's hours, 2026-2027."""
    text = resources.files("shared.calendar").joinpath("sample.yaml").read_text(encoding="utf-8")
    return parse_calendar(text)


def calendar_body(calendar: Calendar) -> dict[str, Any]:
    """The calendar as JSON data in the file's own shape (spans written out, one entry a date);
    `calendar_from_body` reads it back through the same checks."""

    def hours(by_role: Hours) -> dict[str, list[str]]:
        return {role.value: [str(s) for s in spans] for role, spans in by_role.items() if spans}

    weekly: dict[str, dict[str, list[str]]] = {role.value: {} for role in Role}
    for weekday, by_role in enumerate(calendar.weekly):
        for role, spans in hours(by_role).items():
            weekly[role][WEEKDAYS[weekday]] = spans
    specials = [(d.isoformat(), r) for d, r in sorted(calendar.special_days.items())]
    specials += [(f"{m:02d}-{d:02d}", r) for (m, d), r in sorted(calendar.annual.items())]
    return {
        "timezone": calendar.timezone.key,
        "weekly": weekly,
        "holidays": [
            {"name": r.name, "date": d.isoformat(), "hours": hours(r.hours)}
            for d, r in sorted(calendar.holidays.items())
        ],
        "makeup_days": [
            {"date": d.isoformat(), "works_as": WEEKDAYS[m.works_as], "name": m.name}
            for d, m in sorted(calendar.makeup_days.items())
        ],
        "special_days": [
            {"name": r.name, "date": when, "hours": hours(r.hours)} for when, r in specials
        ],
    }


def calendar_from_body(body: Mapping[str, Any]) -> Calendar:
    return parse_calendar(json.dumps(body, ensure_ascii=False))


# --------------------------------------------------------------------------------------------
# Walking the nodes


def _refuse(node: Node, message: str) -> NoReturn:
    raise CalendarError(f"line {node.start_mark.line + 1}: {message}")


class _Reader:
    def __init__(self, shifts: Mapping[str, Span]) -> None:
        self.shifts = shifts
        self.dated: dict[date, int] = {}  # date -> line of the entry that names it

    def calendar(self, root: Node) -> Calendar:
        top = _fields(
            root,
            "calendar",
            allowed={"timezone", "weekly", "holidays", "makeup_days", "special_days"},
            required={"weekly"},
        )
        timezone = _timezone(top["timezone"]) if "timezone" in top else SHOP_TIMEZONE
        weekly = self.weekly(top["weekly"])
        holidays = self.holidays(top.get("holidays"))  # a date is claimed once, in this order
        makeup_days = self.makeup_days(top.get("makeup_days"))
        special_days, annual = self.special_days(top.get("special_days"))
        return Calendar(timezone, weekly, holidays, makeup_days, special_days, annual)

    def holidays(self, node: Node | None) -> dict[date, DayRule]:
        holidays: dict[date, DayRule] = {}
        for entry in _items(node, "holidays"):
            f = _fields(entry, "holidays[]", {"name", "date", "from", "to", "hours"}, {"name"})
            rule = DayRule(_text(f["name"], "name"), self.role_hours(f.get("hours"), "hours"))
            holidays.update((d, rule) for d in self.dates(entry, f))
        return holidays

    def makeup_days(self, node: Node | None) -> dict[date, MakeUpDay]:
        makeup_days: dict[date, MakeUpDay] = {}
        for entry in _items(node, "makeup_days"):
            f = _fields(entry, "makeup_days[]", {"date", "works_as", "name"}, {"date", "works_as"})
            on = self.claim(f["date"], _date(f["date"]))
            if on.weekday() < 5:
                weekday = WEEKDAYS[on.weekday()]
                _refuse(f["date"], f"make-up workday {on} is a {weekday}, not a weekend day")
            name = _text(f["name"], "name") if "name" in f else "调休"
            makeup_days[on] = MakeUpDay(name, _weekday(f["works_as"]))
        return makeup_days

    def special_days(
        self, node: Node | None
    ) -> tuple[dict[date, DayRule], dict[tuple[int, int], DayRule]]:
        """Dated special days, and those given as MM-DD (every year)."""
        dated: dict[date, DayRule] = {}
        annual: dict[tuple[int, int], DayRule] = {}
        for entry in _items(node, "special_days"):
            f = _fields(
                entry, "special_days[]", {"name", "date", "hours"}, {"name", "date", "hours"}
            )
            rule = DayRule(_text(f["name"], "name"), self.role_hours(f["hours"], "hours"))
            if _MONTH_DAY.fullmatch(when := _scalar(f["date"], "date")):
                on = _checked(f["date"], f"2000-{when}")  # 2000: a year with 02-29
                if (on.month, on.day) in annual:
                    _refuse(f["date"], f"special day {when} is given twice")
                annual[on.month, on.day] = rule
            else:
                dated[self.claim(f["date"], _date(f["date"]))] = rule
        return dated, annual

    def weekly(self, node: Node) -> tuple[Hours, ...]:
        days: list[dict[Role, tuple[Span, ...]]] = [{} for _ in WEEKDAYS]
        for key, value in _pairs(node, "weekly"):
            role = _role(key)
            given: set[int] = set()
            for day_key, spans_node in _pairs(value, f"weekly.{role}"):
                where = f"weekly.{role}.{day_key.value}"
                spans = self.spans(spans_node, where)
                for weekday in _weekday_range(day_key):
                    if weekday in given:
                        _refuse(day_key, f"{where}: {WEEKDAYS[weekday]} is given twice")
                    given.add(weekday)
                    if spans:
                        days[weekday][role] = spans
        if missing := [r.value for r in Role if not any(r in day for day in days)]:
            _refuse(node, f"weekly: every role needs staffed hours; none for {', '.join(missing)}")
        return tuple(days)

    def role_hours(self, node: Node | None, where: str) -> Hours:
        if node is None:
            return {}
        hours = {}
        for key, value in _pairs(node, where):
            role = _role(key)
            if spans := self.spans(value, f"{where}.{role}"):
                hours[role] = spans
        return hours

    def spans(self, node: Node, where: str) -> tuple[Span, ...]:
        """A list of shift names and spans, as sorted disjoint spans (named shifts merged)."""
        if not isinstance(node, SequenceNode):
            _refuse(node, f"{where}: expected a list of shifts or spans like ['09:00-17:30']")
        given: list[tuple[Span, bool, Node]] = []  # (span, named shift?, where written)
        for item in node.value:
            text = _scalar(item, where)
            if text in self.shifts:
                given.append((self.shifts[text], True, item))
            elif "-" in text:
                try:
                    given.append((Span.parse(text), False, item))
                except CalendarError as exc:
                    _refuse(item, f"{where}: {exc}")
            else:
                known = ", ".join(self.shifts) or "none"
                _refuse(item, f"{where}: unknown shift {text!r} (known: {known})")
        given.sort(key=lambda g: g[0])
        merged: list[tuple[Span, bool, Node]] = []
        for span, named, item in given:
            if merged and span.start <= merged[-1][0].end:
                last, last_named, _ = merged[-1]
                if span.start < last.end and not (named and last_named):
                    _refuse(item, f"{where}: {span} overlaps {last}")
                merged[-1] = (Span(last.start, max(last.end, span.end)), named and last_named, item)
            else:
                merged.append((span, named, item))
        return tuple(span for span, _, _ in merged)

    def dates(self, entry: Node, f: Mapping[str, Node]) -> list[date]:
        if "date" in f and not ({"from", "to"} & f.keys()):
            return [self.claim(f["date"], _date(f["date"]))]
        if "date" in f or not {"from", "to"} <= f.keys():
            _refuse(entry, "give either `date`, or `from` and `to`")
        first, last = _date(f["from"]), _date(f["to"])
        if last < first:
            _refuse(f["to"], f"to {last} is before from {first}")
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return [self.claim(f["from"], d) for d in days]

    def claim(self, node: Node, on: date) -> date:
        """`on` is named by one dated entry only."""
        line = node.start_mark.line + 1
        if (first := self.dated.setdefault(on, line)) != line:
            _refuse(node, f"{on} is already given on line {first}")
        return on


def _fields(
    node: Node, where: str, allowed: set[str], required: Iterable[str] = ()
) -> dict[str, Node]:
    fields = {key.value: value for key, value in _pairs(node, where)}
    for key, _ in _pairs(node, where):
        if key.value not in allowed:
            _refuse(
                key, f"{where}: unknown field {key.value!r} (allowed: {', '.join(sorted(allowed))})"
            )
    if missing := sorted(set(required) - fields.keys()):
        _refuse(node, f"{where}: missing {', '.join(missing)}")
    return fields


def _pairs(node: Node, where: str) -> list[tuple[ScalarNode, Node]]:
    if not isinstance(node, MappingNode):
        _refuse(node, f"{where}: expected a mapping")
    seen: set[str] = set()
    pairs = []
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            _refuse(key, f"{where}: expected a plain key")
        if key.value in seen:
            _refuse(key, f"{where}: {key.value!r} is given twice")
        seen.add(key.value)
        pairs.append((key, value))
    return pairs


def _items(node: Node | None, where: str) -> list[Node]:
    if node is None:
        return []
    if not isinstance(node, SequenceNode):
        _refuse(node, f"{where}: expected a list")
    return list(node.value)


def _scalar(node: Node, where: str) -> str:
    if not isinstance(node, ScalarNode):
        _refuse(node, f"{where}: expected a single value")
    return str(node.value)


def _text(node: Node, where: str) -> str:
    if not (text := _scalar(node, where).strip()):
        _refuse(node, f"{where}: expected non-empty text")
    return text


def _role(node: ScalarNode) -> Role:
    if node.value in {r.value for r in Role}:
        return Role(node.value)
    _refuse(node, f"unknown role {node.value!r} (known: {', '.join(r.value for r in Role)})")


def _weekday(node: Node) -> int:
    text = _scalar(node, "weekday")
    if text not in WEEKDAYS:
        _refuse(node, f"unknown weekday {text!r} (known: {', '.join(WEEKDAYS)})")
    return WEEKDAYS.index(text)


def _weekday_range(node: ScalarNode) -> range:
    first, sep, last = node.value.partition("-")
    start = _weekday(ScalarNode(node.tag, first, node.start_mark, node.end_mark))
    end = _weekday(ScalarNode(node.tag, last, node.start_mark, node.end_mark)) if sep else start
    if end < start:
        _refuse(node, f"{node.value}: a day range runs forward within one week, e.g. mon-fri")
    return range(start, end + 1)


def _date(node: Node) -> date:
    text = _scalar(node, "date")
    if not _ISO_DATE.fullmatch(text):
        _refuse(node, f"expected a date like 2026-10-01, got {text!r}")
    return _checked(node, text)


def _checked(node: Node, iso: str) -> date:
    try:
        return date.fromisoformat(iso)
    except ValueError:
        _refuse(node, f"no such date {node.value!r}")


def _timezone(node: Node) -> ZoneInfo:
    name = _scalar(node, "timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        _refuse(node, f"timezone: unknown time zone {name!r}")
