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


@dataclass(frozen=True, kw_only=True)
class Wait:
    name: str
    question: str  # what it waits for
    answers: Mapping[str, str]
    timeout: Timeout


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


def allowed_answers(state: State, position: FlowPosition, at: datetime) -> tuple[str, ...]:
    """The answers a Step may give now: a waiting state's `timeout` only once its duration has
    passed since the state was entered (calendar time: a lower bound, the shop clock's staffed
    hours only make the timer fire later). A hand-over moves on its result, an end not at all."""
    match state:
        case Ask():
            return tuple(state.answers)
        case Wait():
            due = at >= position.entered_at + state.timeout.after
            return (*state.answers, *((TIMEOUT,) if due else ()))
        case HandOver() | End():
            return ()


def start_position(flow: Flow, at: datetime) -> FlowPosition:
    return FlowPosition(kind=flow.kind, version=flow.version, state=flow.start, entered_at=at)
