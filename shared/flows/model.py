"""A ticket kind's path as data (SPEC §6, §7): states, the moves between them, and where a
ticket stands on it. Pure values; `shared.flows.load` builds them from YAML and validates them.

Four kinds of state (temporal's DSL sample: `Statement = Union[...]`):

* `Ask`: a question the owner answers as the customer answers (a named answer per next state);
* `Wait`: waiting for something outside (photos, payment, the platform's ruling); answered like
  a question when it arrives, and it MUST name its timeout: the timer kind of the shop clock,
  its duration and the state the ticket moves to when it fires (`timeout` answer);
* `HandOver`: work handed to a role with a task; the ticket resumes at the state named for the
  result's outcome (done / failed) when the result comes back;
* `End`: the path's end; it records a reason: a fixed resolution, or a loss reason the agent
  picks from the flow's list (pre-sale no-deal, 流失原因).

An answer may carry a `Guard` on the order's times (the 7-day return window from signing, more
than 72 h since payment and not shipped, an invoice only after receipt): it is allowed only when
the order says so. Every question keeps one answer without a guard, so no ticket is ever stuck.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeAlias

# No import of shared.tickets here: the ticket aggregate imports this module (its state keeps a
# FlowPosition, a Step carries its Flow). Kinds, roles and outcomes are plain strings here.

# The answer that moves a waiting state on when its timer fired.
TIMEOUT = "timeout"

# The order's times a guard may read (the `Order` contract's fields), as the ticket has them.
ORDER_TIMES = ("placed_at", "paid_at", "printed_at", "shipped_at", "signed_at")
Facts: TypeAlias = Mapping[str, datetime]


@dataclass(frozen=True, kw_only=True)
class Guard:
    """An answer allowed only when the order's times say so: `since` is set, and (if given) it
    was at most `within` / more than `over` ago, and `unless` is not set."""

    since: str
    within: timedelta | None = None
    over: timedelta | None = None
    unless: str | None = None

    def holds(self, facts: Facts, at: datetime) -> bool:
        since = facts.get(self.since)
        if since is None or (self.unless is not None and self.unless in facts):
            return False
        if self.within is not None and at - since > self.within:
            return False
        return self.over is None or at - since > self.over

    def __str__(self) -> str:
        words = [f"{self.since} set"]
        if self.within is not None:
            words = [f"{self.since} at most {_hours(self.within)} ago"]
        if self.over is not None:
            words = [f"{self.since} more than {_hours(self.over)} ago"]
        if self.unless is not None:
            words.append(f"no {self.unless}")
        return " and ".join(words)


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g}d" if hours % 24 == 0 and hours >= 7 * 24 else f"{hours:g}h"


def order_facts(order: Mapping[str, object] | None) -> dict[str, datetime]:
    """The order's times from the ticket's order data (ISO strings in JSON)."""
    facts = {}
    for name in ORDER_TIMES:
        value = (order or {}).get(name)
        if isinstance(value, str):
            facts[name] = datetime.fromisoformat(value)
        elif isinstance(value, datetime):
            facts[name] = value
    return facts


@dataclass(frozen=True, kw_only=True)
class Timeout:
    timer: str  # the timer kind, e.g. customer_reply_24h (armed by the timers, not here)
    after: timedelta
    then: str  # the state entered when it fires


@dataclass(frozen=True, kw_only=True)
class Ask:
    name: str
    question: str
    answers: Mapping[str, str]  # answer -> next state
    guards: Mapping[str, Guard] = field(default_factory=dict)  # answer -> when it is allowed


@dataclass(frozen=True, kw_only=True)
class Wait:
    name: str
    question: str  # what it waits for
    answers: Mapping[str, str]
    timeout: Timeout
    guards: Mapping[str, Guard] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class HandOver:
    name: str
    question: str  # what the task is, for people
    role: str  # a Role's value
    action: str
    on: Mapping[str, str]  # result outcome (done, failed) -> state where the ticket resumes


@dataclass(frozen=True, kw_only=True)
class End:
    name: str
    resolution: str | None  # the fixed reason; None: a loss reason from the flow's list


State: TypeAlias = Ask | Wait | HandOver | End


def moves(state: State) -> Mapping[str, str]:
    """Every move out of `state` as {answer or outcome: next state}."""
    match state:
        case Ask():
            return state.answers
        case Wait():
            return {**state.answers, TIMEOUT: state.timeout.then}
        case HandOver():
            return dict(state.on)
        case End():
            return {}


@dataclass(frozen=True, kw_only=True)
class Flow:
    kind: str  # a TicketKind's value
    version: int
    title: str
    start: str
    states: Mapping[str, State]
    loss_reasons: tuple[str, ...] = ()
    source: str = ""  # the file it was loaded from, for messages

    def state(self, name: str) -> State:
        return self.states[name]

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.version)

    def __str__(self) -> str:
        return f"{self.kind} v{self.version}"


@dataclass(frozen=True, kw_only=True)
class FlowPosition:
    """Where a ticket stands on its flow, kept in the ticket's state.

    The ticket finishes on the (kind, version) it started on, whatever newer version is loaded.
    `handoff_id` and `resume` are set in a hand-over state: the handoff it opened, and where
    its result's outcome leads (so recording a result needs no flow definition).
    """

    kind: str
    version: int
    state: str
    entered_at: datetime
    handoff_id: str | None = None
    resume: Mapping[str, str] = field(default_factory=dict)
    end_reason: str | None = None
    # A waiting state's timeout, so its timer is armed from the ticket alone (shared.tickets
    # clocks); in a hand-over, the timeouts of the waiting states its results lead to.
    timeout: timedelta | None = None
    resume_timeouts: Mapping[str, timedelta] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowBook:
    """Every loaded version of every flow; the newest version of a kind starts new tickets."""

    flows: Mapping[tuple[str, int], Flow]

    def get(self, kind: str, version: int) -> Flow | None:
        return self.flows.get((kind, version))

    def newest(self, kind: str) -> Flow | None:
        versions = [f for (k, _), f in self.flows.items() if k == kind]
        return max(versions, key=lambda f: f.version, default=None)

    def of(self, position: FlowPosition | None) -> Flow | None:
        return None if position is None else self.get(position.kind, position.version)

    def __iter__(self) -> Iterator[Flow]:
        return iter(sorted(self.flows.values(), key=lambda f: (f.kind, f.version)))


def allowed_answers(
    state: State, position: FlowPosition, at: datetime, facts: Facts | None = None
) -> tuple[str, ...]:
    """The answers a Step may give now: those whose guard holds on the order's `facts`; a
    waiting state's `timeout` only once its duration has passed since the state was entered
    (calendar time: a lower bound, the shop clock's staffed hours only make the timer fire
    later). A hand-over moves on its result, an end not at all."""
    match state:
        case Ask() | Wait():
            answers = tuple(
                answer
                for answer in state.answers
                if answer not in state.guards or state.guards[answer].holds(facts or {}, at)
            )
            if isinstance(state, Wait) and at >= position.entered_at + state.timeout.after:
                return (*answers, TIMEOUT)
            return answers
        case HandOver() | End():
            return ()


def start_position(flow: Flow, at: datetime) -> FlowPosition:
    return FlowPosition(
        kind=flow.kind,
        version=flow.version,
        state=flow.start,
        entered_at=at,
        timeout=timeout_of(flow.state(flow.start)),
    )


def timeout_of(state: State) -> timedelta | None:
    """How long a waiting state waits; None for any other state."""
    return state.timeout.after if isinstance(state, Wait) else None
