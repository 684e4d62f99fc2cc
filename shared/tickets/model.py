"""The ticket's state (SPEC §4): its vocabulary, who owns it, its handoffs; immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, TypeAlias

from shared.flows.model import FlowPosition
from shared.tickets.roles import Role, TicketKind

# --------------------------------------------------------------------------------------------
# Vocabulary


class TicketStatus(StrEnum):
    QUEUED = "queued"  # owned by a role, no agent yet (排队)
    IN_PROGRESS = "in_progress"  # owned by an agent
    HANDED_OFF = "handed_off"  # 转交: work is with another role; the first handler tracks it
    ESCALATED = "escalated"  # 升级: with the supervisor; the first handler tracks it
    RESOLVED = "resolved"  # the customer was told the result
    CLOSED = "closed"  # 事件关闭: nothing more may happen


class RejectionCode(StrEnum):
    NOT_OWNER = "not_owner"
    NOT_FIRST_HANDLER = "not_first_handler"
    VERSION_CONFLICT = "version_conflict"
    HANDOFFS_PENDING = "handoffs_pending"
    INVALID_TRANSITION = "invalid_transition"
    NOT_ALLOWED_BY_FLOW = "not_allowed_by_flow"


class EscalationCategory(StrEnum):
    """Problems that must go to the supervisor (seed 002 §3 明确升级标准, SPEC §5.8)."""

    LARGE_AMOUNT_DISPUTE = "large_amount_dispute"  # 大额订单纠纷
    MALICIOUS_COMPLAINT = "malicious_complaint"  # 恶意投诉
    QUALITY_HAZARD = "quality_hazard"  # 产品重大质量隐患
    SYSTEM_FAILURE = "system_failure"  # 系统故障
    EXCESSIVE_DEMAND = "excessive_demand"  # customer demands judged excessive
    TIMER_BREACH = "timer_breach"  # §8: e.g. no response after 30 min


Outcome: TypeAlias = Literal["done", "failed"]

# Roles a ticket may be handed off to (§5.4); pre-sale only ever starts tickets.
HANDOFF_ROLES = frozenset({Role.AFTERSALES, Role.WAREHOUSE, Role.FINANCE, Role.SUPERVISOR})

# The task action of the handoff that carries an escalation.
ESCALATION_ACTION = "escalation"


@dataclass(frozen=True)
class AgentRef:
    """An agent as the ticket remembers them: enough to show and to compare."""

    id: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


@dataclass(frozen=True)
class Actor:
    """Whoever issues a command: an agent with their roles, or the system itself."""

    id: str
    name: str
    roles: frozenset[Role] = frozenset()

    @property
    def ref(self) -> AgentRef:
        return AgentRef(self.id, self.name)


# Auto-assignment and timers act as this actor; the roster refuses an agent with its id.
SYSTEM = Actor(id="system", name="ticketq")


@dataclass(frozen=True)
class Owner:
    """The current owner (当前负责人): who must act now. Exactly one per ticket."""

    role: Role
    agent: AgentRef | None = None

    def __str__(self) -> str:
        if self.agent is None:
            return f"the {self.role} role (no agent yet)"
        return f"{self.role} agent {self.agent}"


@dataclass(frozen=True)
class Task:
    """What a handoff asks the other role to do, e.g. `refund` with `{"amount": "59.00"}`."""

    action: str
    data: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_text(self.action, "task action")
        object.__setattr__(self, "data", dict(self.data))  # our own copy; never mutated


@dataclass(frozen=True, kw_only=True)
class HandoffResult:
    """What the other role reports back (§5.5): done or failed, with e.g. a refund id."""

    outcome: Outcome
    data: Mapping[str, object]
    at: datetime
    by: AgentRef


@dataclass(frozen=True, kw_only=True)
class Handoff:
    """Work moved to another role (转交), open until its result is recorded."""

    id: str
    role: Role
    task: Task
    opened_at: datetime
    opened_by: AgentRef
    # The agent who took the work; None means any agent of `role` may record the result.
    taken_by: AgentRef | None = None
    result: HandoffResult | None = None

    @property
    def is_open(self) -> bool:
        return self.result is None


@dataclass(frozen=True, kw_only=True)
class Escalation:
    """An escalation to the supervisor (升级), with what seed 002 says it must carry."""

    handoff_id: str  # the supervisor handoff that carries it; its result is the decision
    category: EscalationCategory
    customer_info: Mapping[str, object]  # 客户信息
    problem: str  # 问题描述
    actions_taken: str  # 已处理措施
    customer_demand: str  # 客户诉求
    responsible: AgentRef  # 责任人
    deadline: datetime  # 处理时限
    opened_at: datetime
    opened_by: AgentRef


@dataclass(frozen=True, kw_only=True)
class Ticket:
    id: str
    kind: TicketKind
    status: TicketStatus
    owner: Owner
    # The role the ticket was routed to: the role in which the first handler takes it, and
    # the role the ticket returns to when its handoffs are done.
    first_handler_role: Role
    first_handler: AgentRef | None = None  # 首接人; set once, changed only by a supervisor
    handoffs: tuple[Handoff, ...] = ()
    version: int = 1
    created_at: datetime
    first_response_at: datetime | None = None
    escalation: Escalation | None = None  # the latest one
    resolution: str | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    # 24 h unpaid (§6, seed 003): another pre-sale agent may take over the chase (追单).
    chase_open: bool = False
    # Where it stands on its kind's flow; born when its first handler takes it (Claim/Assign
    # carrying the newest flow). None: opened before flows existed, or a kind without one.
    flow: FlowPosition | None = None

    @property
    def open_handoffs(self) -> tuple[Handoff, ...]:
        return tuple(h for h in self.handoffs if h.is_open)

    @property
    def home_owner(self) -> Owner:
        """Where the ticket is when no work is out: with its first handler (or their queue)."""
        return Owner(self.first_handler_role, self.first_handler)

    def handoff(self, handoff_id: str) -> Handoff | None:
        return next((h for h in self.handoffs if h.id == handoff_id), None)

    @property
    def next_handoff_id(self) -> str:
        """The id the next handoff gets: the ticket's id and its number, e.g. T1-H2."""
        return f"{self.id}-H{len(self.handoffs) + 1}"


def new_ticket(id: str, kind: TicketKind, role: Role, at: datetime) -> Ticket:
    """A ticket just routed to `role`'s queue (§5.1): owned by the role, no agent, version 1."""
    require_aware(at, "at")
    return Ticket(
        id=id,
        kind=kind,
        status=TicketStatus.QUEUED,
        owner=Owner(role),
        first_handler_role=role,
        created_at=at,
    )


def require_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {at!r}")


def require_text(text: str, what: str) -> None:
    if not text.strip():
        raise ValueError(f"{what} must not be blank")
