"""Flows from YAML, validated when loaded: a service never starts on an invalid flow.

Versions: one file per version, `KIND.vN.yaml` in a room's `flows/` folder (its `kind` and
`version` must say the same). A released version is never edited: a change is a new file
`KIND.vN+1.yaml`, and the old one stays, so tickets started on it finish on it; new tickets
start on the newest.

An answer is `answer: state`, or `answer: {to: state, when: GUARD}` where GUARD reads the
order's times: `{since: signed_at, within: 7d}`, `{since: paid_at, over: 72h, unless: shipped_at}`.

What is refused, with a message naming the file and the state: unknown keys; a state that is not
exactly one of `ask`, `wait`, `handoff`, `end`; an answer or outcome leading to no state; a
waiting state without a timeout; an end state without a reason (a `resolution`, or
`loss_reason: required` with the flow's `loss_reasons` list); a question whose every answer has
a guard (it could get stuck); a state not reachable from the start; a state from which no end
state can be reached; a hand-over whose result leads straight to an end or another hand-over (a
result comes back to the first handler, who tells the customer and decides what next, SPEC
§5.5, §5.6; recording a result needs no flow definition).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.flows.model import (
    TIMEOUT,
    Ask,
    End,
    Flow,
    FlowBook,
    Guard,
    HandOver,
    State,
    Timeout,
    Wait,
    moves,
)
from shared.tickets.model import HANDOFF_ROLES
from shared.tickets.roles import Role, TicketKind

NAME = r"^[a-z][a-z0-9_]*$"
Name = Field(pattern=NAME, max_length=64)
_DURATION = re.compile(r"^(\d+)([mhd])$")
_FILE = re.compile(r"^([a-z_]+)\.v(\d+)\.yaml$")


class FlowError(ValueError):
    """An invalid flow: the message names the file and the state."""


Refuse = Callable[..., FlowError]  # (message, state=None)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _TimeoutSpec(_Spec):
    timer: str = Field(pattern=NAME, description="Timer kind, e.g. customer_reply_24h")
    after: str = Field(pattern=_DURATION.pattern, description="30m, 24h, 7d")
    then: str = Field(pattern=NAME)


OrderTime = Literal["placed_at", "paid_at", "printed_at", "shipped_at", "signed_at"]


class _GuardSpec(_Spec):
    since: OrderTime = Field(description="The order time it counts from; must be set")
    within: str | None = Field(None, pattern=_DURATION.pattern, description="At most this ago")
    over: str | None = Field(None, pattern=_DURATION.pattern, description="More than this ago")
    unless: OrderTime | None = Field(None, description="And this order time is not set")


class _GuardedAnswer(_Spec):
    to: str
    when: _GuardSpec


Answers = dict[str, str | _GuardedAnswer]


class _AskSpec(_Spec):
    ask: str = Field(min_length=1)
    answers: Answers = Field(min_length=1)


class _WaitSpec(_Spec):
    wait: str = Field(min_length=1)
    answers: Answers = Field(default_factory=dict)
    timeout: _TimeoutSpec


class _HandoffTask(_Spec):
    role: Role
    action: str = Field(pattern=NAME)


class _HandoffSpec(_Spec):
    handoff: _HandoffTask
    about: str = Field("", description="What the task is, for people")
    results: dict[Literal["done", "failed"], str]


class _EndReason(_Spec):
    resolution: str | None = Field(None, min_length=1)
    loss_reason: Literal["required"] | None = None


class _EndSpec(_Spec):
    end: _EndReason


_SPECS: Mapping[str, type[_Spec]] = {
    "ask": _AskSpec,
    "wait": _WaitSpec,
    "handoff": _HandoffSpec,
    "end": _EndSpec,
}


class _FlowSpec(_Spec):
    kind: TicketKind
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    start: str
    loss_reasons: list[str] = Field(default_factory=list)
    states: dict[str, dict[str, Any]] = Field(min_length=1)


def duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration like 30m, 24h or 7d, not {text!r}")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
    )


def parse_flow(data: object, source: str) -> Flow:
    """One flow from its decoded YAML, validated; a FlowError names `source` and the state."""

    def refuse(message: str, state: str | None = None) -> FlowError:
        return FlowError(f"{source}: {f'state {state!r}: ' if state else ''}{message}")

    try:
        spec = _FlowSpec.model_validate(data)
    except ValidationError as exc:
        raise refuse(_problems(exc)) from None
    states: dict[str, State] = {}
    for name, raw in spec.states.items():
        if not re.match(NAME, name):
            raise refuse(f"a state name is lower_snake_case, not {name!r}")
        states[name] = _state(name, raw, refuse)
    flow = Flow(
        kind=spec.kind.value,
        version=spec.version,
        title=spec.title,
        start=spec.start,
        states=states,
        loss_reasons=tuple(spec.loss_reasons),
        source=source,
    )
    _check_graph(flow, refuse)
    return flow


def _state(name: str, raw: dict[str, Any], refuse: Refuse) -> State:
    tags = [tag for tag in _SPECS if tag in raw]
    if len(tags) != 1:
        raise refuse("a state is exactly one of ask, wait, handoff, end", name)
    try:
        spec = _SPECS[tags[0]].model_validate(raw)
    except ValidationError as exc:
        raise refuse(_problems(exc), name) from None
    match spec:
        case _AskSpec():
            answers, guards = _answers(spec.answers)
            if len(guards) == len(answers):
                raise refuse(
                    "every answer has a guard: keep one without, or it may get stuck", name
                )
            return Ask(name=name, question=spec.ask, answers=answers, guards=guards)
        case _WaitSpec():
            if TIMEOUT in spec.answers:
                raise refuse(f"{TIMEOUT!r} is the timer's answer, not one to declare", name)
            t = spec.timeout
            answers, guards = _answers(spec.answers)
            return Wait(
                name=name,
                question=spec.wait,
                answers=answers,
                guards=guards,
                timeout=Timeout(timer=t.timer, after=duration(t.after), then=t.then),
            )
        case _HandoffSpec():
            if spec.handoff.role not in HANDOFF_ROLES:
                raise refuse(f"work is not handed to {spec.handoff.role}", name)
            if set(spec.results) != {"done", "failed"}:
                raise refuse("a handoff names where both done and failed lead", name)
            return HandOver(
                name=name,
                question=spec.about or f"{spec.handoff.role}: {spec.handoff.action}",
                role=spec.handoff.role.value,
                action=spec.handoff.action,
                on={str(outcome): state for outcome, state in spec.results.items()},
            )
        case _EndSpec():
            reason = spec.end
            if (reason.resolution is None) == (reason.loss_reason is None):
                raise refuse(
                    "an end state records a reason: a resolution or loss_reason: required", name
                )
            return End(name=name, resolution=reason.resolution)
    raise AssertionError(spec)  # pragma: no cover - every spec is matched above


def _answers(spec: Answers) -> tuple[dict[str, str], dict[str, Guard]]:
    """{answer: next state} and the guards of the answers that have one."""
    answers: dict[str, str] = {}
    guards: dict[str, Guard] = {}
    for answer, target in spec.items():
        if isinstance(target, str):
            answers[answer] = target
            continue
        answers[answer] = target.to
        when = target.when
        guards[answer] = Guard(
            since=when.since,
            within=duration(when.within) if when.within else None,
            over=duration(when.over) if when.over else None,
            unless=when.unless,
        )
    return answers, guards


def _check_graph(flow: Flow, refuse: Refuse) -> None:
    if flow.start not in flow.states:
        raise refuse(f"the start state {flow.start!r} does not exist")
    if not isinstance(flow.states[flow.start], Ask | Wait):
        raise refuse("the start state is a question or a wait", flow.start)
    for state in flow.states.values():
        for answer, target in moves(state).items():
            if target not in flow.states:
                raise refuse(f"{answer!r} leads to {target!r}, which does not exist", state.name)
            if isinstance(state, HandOver) and not isinstance(flow.states[target], Ask | Wait):
                raise refuse(
                    f"the result ({answer}) leads straight to {target!r}: a result comes back "
                    "to a question or a wait, where the first handler tells the customer and "
                    "decides what next",
                    state.name,
                )
        if isinstance(state, End) and state.resolution is None and not flow.loss_reasons:
            raise refuse("a loss needs the flow's loss_reasons list", state.name)
    reached = _reachable(flow, [flow.start])
    for name in flow.states:
        if name not in reached:
            raise refuse("not reachable from the start", name)
    ends = {n for n, s in flow.states.items() if isinstance(s, End)}
    for name in flow.states:
        if not ends & _reachable(flow, [name]):
            raise refuse("no end state can be reached from it", name)


def _reachable(flow: Flow, starts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(moves(flow.states[name]).values())
    return seen


def load_flow(path: Path) -> Flow:
    source = str(path)
    match = _FILE.match(path.name)
    if match is None:
        raise FlowError(f"{source}: a flow file is named KIND.vN.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FlowError(f"{source}: cannot read it: {exc}") from None
    flow = parse_flow(data, source)
    if (flow.kind, flow.version) != (match[1], int(match[2])):
        raise FlowError(
            f"{source}: the file says {flow.kind} v{flow.version}; its name says "
            f"{match[1]} v{match[2]}"
        )
    return flow


def load_flows(folders: Iterable[Path]) -> FlowBook:
    """Every `*.yaml` flow in `folders`, each validated; the first invalid one is refused."""
    flows: dict[tuple[str, int], Flow] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            flow = load_flow(path)
            if flow.key in flows:
                raise FlowError(f"{path}: {flow} is also in {flows[flow.key].source}")
            flows[flow.key] = flow
    return FlowBook(flows)
