"""Commands on a ticket: what an actor asks, checked for shape when built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias, get_args

from shared.flows.model import Facts, Flow
from shared.tickets.model import (
    HANDOFF_ROLES,
    Actor,
    AgentRef,
    EscalationCategory,
    Outcome,
    Task,
    require_aware,
    require_text,
)
from shared.tickets.roles import Role, TicketKind

# --------------------------------------------------------------------------------------------
# Commands. Each is checked for shape when built (a ValueError is a malformed command, not a
# business rejection); `decide` checks it against the ticket.


@dataclass(frozen=True, kw_only=True)
class _CommandBase:
    actor: Actor
    at: datetime
    message_id: str  # the message that caused it, kept in the history
    expected_version: int | None = None  # the version the actor saw; None = don't check

    def __post_init__(self) -> None:
        require_aware(self.at, "at")
        require_text(self.message_id, "message_id")


@dataclass(frozen=True, kw_only=True)
class Open(_CommandBase):
    """Intake opens a ticket for a new contact, in `role`'s queue (§5.1): its birth."""

    ticket_id: str
    kind: TicketKind
    role: Role

    def __post_init__(self) -> None:
        super().__post_init__()
        require_text(self.ticket_id, "ticket_id")


@dataclass(frozen=True, kw_only=True)
class AttachFollowUp(_CommandBase):
    """A new contact from the customer joins their unfinished ticket (§4, 未处理完毕顾客); a
    resolved one reopens to its first handler, so the customer's message is not stuck."""

    source: str
    external_id: str

    def __post_init__(self) -> None:
        super().__post_init__()
        require_text(self.external_id, "external_id")


@dataclass(frozen=True, kw_only=True)
class Claim(_CommandBase):
    """An agent takes the unowned work: a queued ticket, or the handoff that owns it."""

    flow: Flow | None = None  # the newest flow of the ticket's kind: starts it if it has none


@dataclass(frozen=True, kw_only=True)
class Assign(_CommandBase):
    """Auto-assignment (or a supervisor) gives the unowned work to `agent`."""

    agent: AgentRef
    flow: Flow | None = None  # as for Claim


@dataclass(frozen=True, kw_only=True)
class Reply(_CommandBase):
    """A message to the customer; the first one sets the ticket's first response time.

    `promise_by`: the reply promises the customer the next one by then (§8, a promise timer).
    """

    text: str
    promise_by: datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_text(self.text, "reply text")
        if self.promise_by is not None:
            require_aware(self.promise_by, "promise_by")
            if self.promise_by <= self.at:
                raise ValueError("a reply can only promise a time after it is sent")


@dataclass(frozen=True, kw_only=True)
class HandOff(_CommandBase):
    """Move work to another role with a task (§5.4)."""

    handoff_id: str
    role: Role
    task: Task

    def __post_init__(self) -> None:
        super().__post_init__()
        require_text(self.handoff_id, "handoff_id")
        if self.role not in HANDOFF_ROLES:
            allowed = ", ".join(sorted(HANDOFF_ROLES))
            raise ValueError(f"cannot hand off to {self.role}; hand off to one of: {allowed}")


@dataclass(frozen=True, kw_only=True)
class RecordResult(_CommandBase):
    """The other role reports a handoff's result (§5.5)."""

    handoff_id: str
    outcome: Outcome
    data: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.outcome not in get_args(Outcome):
            raise ValueError(f"outcome must be 'done' or 'failed', not {self.outcome!r}")
        object.__setattr__(self, "data", dict(self.data))


@dataclass(frozen=True, kw_only=True)
class Resolve(_CommandBase):
    """The customer was told the result (§5.6)."""

    summary: str

    def __post_init__(self) -> None:
        super().__post_init__()
        require_text(self.summary, "resolution summary")


@dataclass(frozen=True, kw_only=True)
class Close(_CommandBase):
    """事件关闭: the end of the ticket."""


@dataclass(frozen=True, kw_only=True)
class Escalate(_CommandBase):
    """Send the ticket to the supervisor (§5.8); see the module docstring."""

    category: EscalationCategory
    customer_info: Mapping[str, object]
    problem: str
    actions_taken: str
    customer_demand: str
    responsible: AgentRef
    deadline: datetime

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "category", EscalationCategory(self.category))
        object.__setattr__(self, "customer_info", dict(self.customer_info))
        require_text(self.problem, "problem")
        require_aware(self.deadline, "deadline")
        if self.deadline <= self.at:
            raise ValueError("an escalation's deadline must be after it is raised")

    @property
    def handoff_id(self) -> str:
        # Derived from the message so that the same message always means the same escalation.
        return f"escalation:{self.message_id}"


@dataclass(frozen=True, kw_only=True)
class ReassignFirstHandler(_CommandBase):
    """A supervisor names a new first handler, e.g. the old one went off shift for good."""

    new_first_handler: AgentRef
    reason: str

    def __post_init__(self) -> None:
        super().__post_init__()
        require_text(self.reason, "reason for reassigning the first handler")


@dataclass(frozen=True, kw_only=True)
class OpenChase(_CommandBase):
    """The order stayed unpaid 24 h (a timer): other pre-sale agents may chase it (追单)."""


@dataclass(frozen=True, kw_only=True)
class TakeOverChase(_CommandBase):
    """Another agent of the ticket's role takes over an open chase whose first handler is away
    (offline or off shift, as the desk reads the roster): they become its first handler, and
    the order's credit goes to them (seed 003)."""

    first_handler_away: bool


@dataclass(frozen=True, kw_only=True)
class Step(_CommandBase):
    """A move on the ticket's flow: the answer to its current question (SPEC §6, §7).

    `flow` is the definition the ticket started on (the desk looks it up by kind and version);
    `facts` the order's times its guards read (`shared.flows.model.order_facts`); `reason` is
    required when the move ends the flow in a loss (one of its loss reasons).
    """

    answer: str
    flow: Flow | None  # None: the ticket follows no flow, or its version is not loaded
    facts: Facts = field(default_factory=dict)
    note: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_text(self.answer, "answer")


Command: TypeAlias = (
    AttachFollowUp
    | OpenChase
    | TakeOverChase
    | Claim
    | Assign
    | Reply
    | HandOff
    | RecordResult
    | Resolve
    | Close
    | Escalate
    | ReassignFirstHandler
    | Step
)


# The history's one vocabulary (its action column): what happened, in the past tense. Steps of
# a warehouse or finance task that do not finish it are `step_recorded` (shared.tickets.operations);
# timer firings write theirs as the system (shared.tickets.timing: breached, owner_reminded...).
ACTIONS: Mapping[type[Command | Open], str] = {
    Open: "opened",
    AttachFollowUp: "follow_up_attached",
    Claim: "claimed",
    Assign: "assigned",
    Reply: "replied",
    HandOff: "handed_off",
    RecordResult: "result_recorded",
    Resolve: "resolved",
    Close: "closed",
    Escalate: "escalated",
    ReassignFirstHandler: "first_handler_reassigned",
    OpenChase: "chase_opened",
    TakeOverChase: "chase_taken_over",
    Step: "stepped",
}
STEP_RECORDED = "step_recorded"


def action_of(command: Command | Open) -> str:
    """What the command did, as the history says it."""
    return ACTIONS[type(command)]


def command_name(command: Command | Open) -> str:
    """The command as people call it, for messages: Claim, HandOff..."""
    return type(command).__name__
