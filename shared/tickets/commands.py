"""Commands on a ticket: what an actor asks, checked for shape when built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias, get_args

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
from shared.tickets.roles import Role

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
class Claim(_CommandBase):
    """An agent takes the unowned work: a queued ticket, or the handoff that owns it."""


@dataclass(frozen=True, kw_only=True)
class Assign(_CommandBase):
    """Auto-assignment (or a supervisor) gives the unowned work to `agent`."""

    agent: AgentRef


@dataclass(frozen=True, kw_only=True)
class Reply(_CommandBase):
    """A message to the customer; the first one sets the ticket's first response time."""

    text: str

    def __post_init__(self) -> None:
        super().__post_init__()
        require_text(self.text, "reply text")


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


Command: TypeAlias = (
    Claim
    | Assign
    | Reply
    | HandOff
    | RecordResult
    | Resolve
    | Close
    | Escalate
    | ReassignFirstHandler
)


def action_of(command: Command) -> str:
    """The command's name in the history (its action column)."""
    return type(command).__name__
