"""The ticket aggregate: who owns it, who tracks it, and what each command may do (SPEC §4, §5).

Seed 000's flow: customer → **first handler** (首接人: "由发起人跟踪最终处理结果", the one who
started it tracks the final result) → next handler(s) → back to the first handler → closed.

The state is immutable. `decide(ticket, command)` is the only way to change it: it returns either
`Accepted` (the new ticket, the events to publish, and exactly one history entry) or `Rejected`
(a reason code, a message for people, and the name of the rule that broke). Nothing here reads
the clock or does I/O; every command carries its own time.

Who may do what, in one place:

| command              | who                                                                 |
|----------------------|---------------------------------------------------------------------|
| Claim                | an agent of the owning role while no agent owns it, or a supervisor |
| Assign               | the system (auto-assignment) or a supervisor                        |
| Reply, HandOff       | the owner, the first handler (tracking), or a supervisor            |
| Escalate             | the same, or the system (timer breaches)                            |
| RecordResult         | the handoff's taker, else an agent of its role; or a supervisor     |
| Resolve, Close       | the first handler or a supervisor                                   |
| ReassignFirstHandler | a supervisor                                                        |

Design decisions (see also `_settled`):

* **Parallel handoffs (§5.4).** Every handoff is kept in `handoffs`; the owner is the role of the
  most recently opened handoff that has no result yet (or the agent who took it). The first
  handler is *tracking* the ticket while it is away, so they (or a supervisor) may open more
  handoffs in parallel, reply to the customer and escalate, although the owner is now another
  role. An agent of the handoff's role may take it (Claim, or Assign by the system); they then
  own the ticket and may act on it too (reply; hand off further, which nests).
* **Results return to the first handler (§5.5).** A handoff's result is recorded by the agent
  who took it or, if nobody did, by any agent of its role. When the last open handoff gets its
  result, the owner becomes `(first_handler_role, first_handler)` again, never another agent of
  that role. `first_handler_role` is the role of the queue the ticket was routed to, i.e. the
  role in which the first handler took it: a pre-sale agent who hands an after-sales question
  to after-sales (§5.6) gets the result back as pre-sale. Richer sub-work inside a handoff
  (its own sub-handoffs, approvals) can come later; today it nests: the newest open handoff
  owns the ticket.
* **Escalation (§5.8, seed 002 "问题升级").** An escalation is a handoff to the supervisor role
  that the named responsible person (责任人) has already taken, plus an `Escalation` record with
  the seed's fields. So the owner becomes `(supervisor, responsible)`, the status `escalated`,
  the first handler keeps tracking, and the supervisor's decision is recorded as that handoff's
  result, which returns the ticket to the first handler like any other result. A ticket that
  nobody claimed yet (a timer breach) returns to its role's queue instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Literal, TypeAlias, TypedDict, assert_never, get_args

from shared.domain.roles import Role, TicketKind

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
        _require_text(self.action, "task action")
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

    @property
    def open_handoffs(self) -> tuple[Handoff, ...]:
        return tuple(h for h in self.handoffs if h.is_open)

    @property
    def home_owner(self) -> Owner:
        """Where the ticket is when no work is out: with its first handler (or their queue)."""
        return Owner(self.first_handler_role, self.first_handler)

    def handoff(self, handoff_id: str) -> Handoff | None:
        return next((h for h in self.handoffs if h.id == handoff_id), None)


def new_ticket(id: str, kind: TicketKind, role: Role, at: datetime) -> Ticket:
    """A ticket just routed to `role`'s queue (§5.1): owned by the role, no agent, version 1."""
    _require_aware(at, "at")
    return Ticket(
        id=id,
        kind=kind,
        status=TicketStatus.QUEUED,
        owner=Owner(role),
        first_handler_role=role,
        created_at=at,
    )


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
        _require_aware(self.at, "at")
        _require_text(self.message_id, "message_id")


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
        _require_text(self.text, "reply text")


@dataclass(frozen=True, kw_only=True)
class HandOff(_CommandBase):
    """Move work to another role with a task (§5.4)."""

    handoff_id: str
    role: Role
    task: Task

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.handoff_id, "handoff_id")
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
        _require_text(self.summary, "resolution summary")


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
        _require_text(self.problem, "problem")
        _require_aware(self.deadline, "deadline")
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
        _require_text(self.reason, "reason for reassigning the first handler")


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

# --------------------------------------------------------------------------------------------
# Events: what happened, for the outbox. Each says which ticket, at which version, when, by whom.


@dataclass(frozen=True, kw_only=True)
class _EventBase:
    ticket_id: str
    version: int
    at: datetime
    by: AgentRef


class _Stamp(TypedDict):
    ticket_id: str
    version: int
    at: datetime
    by: AgentRef


@dataclass(frozen=True, kw_only=True)
class TicketClaimed(_EventBase):
    owner: Owner
    handoff_id: str | None  # None: the ticket itself was claimed
    became_first_handler: bool


@dataclass(frozen=True, kw_only=True)
class TicketAssigned(_EventBase):
    owner: Owner
    handoff_id: str | None
    became_first_handler: bool


@dataclass(frozen=True, kw_only=True)
class TicketReplied(_EventBase):
    text: str
    first_response: bool


@dataclass(frozen=True, kw_only=True)
class HandoffRequested(_EventBase):
    handoff_id: str
    role: Role
    task: Task
    first_handler: AgentRef | None  # who tracks it and gets the result


@dataclass(frozen=True, kw_only=True)
class HandoffResultRecorded(_EventBase):
    handoff_id: str
    role: Role
    result: HandoffResult
    first_handler: AgentRef | None


@dataclass(frozen=True, kw_only=True)
class TicketReturnedToFirstHandler(_EventBase):
    owner: Owner  # (first_handler_role, first_handler)


@dataclass(frozen=True, kw_only=True)
class TicketRequeued(_EventBase):
    """Work came back to a ticket nobody had claimed yet: it waits in its role's queue."""

    owner: Owner


@dataclass(frozen=True, kw_only=True)
class TicketResolved(_EventBase):
    summary: str


@dataclass(frozen=True, kw_only=True)
class TicketClosed(_EventBase):
    pass


@dataclass(frozen=True, kw_only=True)
class TicketEscalated(_EventBase):
    escalation: Escalation
    first_handler: AgentRef | None


@dataclass(frozen=True, kw_only=True)
class FirstHandlerReassigned(_EventBase):
    previous: AgentRef
    new: AgentRef
    reason: str
    owner: Owner


Event: TypeAlias = (
    TicketClaimed
    | TicketAssigned
    | TicketReplied
    | HandoffRequested
    | HandoffResultRecorded
    | TicketReturnedToFirstHandler
    | TicketRequeued
    | TicketResolved
    | TicketClosed
    | TicketEscalated
    | FirstHandlerReassigned
)

# Builds a command's events once the new version is known.
_EventFactory: TypeAlias = Callable[[_Stamp], tuple[Event, ...]]

# --------------------------------------------------------------------------------------------
# Outcomes of `decide`


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One line of the append-only history (§4): who, when, what, why, and which message."""

    at: datetime
    actor_id: str
    actor_name: str
    action: str  # the command's name, e.g. "HandOff"
    detail: Mapping[str, object]  # JSON-ready
    reason: str | None
    message_id: str


@dataclass(frozen=True, kw_only=True)
class Accepted:
    ticket: Ticket
    events: tuple[Event, ...]
    history: HistoryEntry


@dataclass(frozen=True)
class Rejected:
    code: RejectionCode
    message: str
    rule: str = ""  # the named rule that broke, for logs and tests


Decision: TypeAlias = Accepted | Rejected

# --------------------------------------------------------------------------------------------
# Who is who


def is_supervisor(actor: Actor) -> bool:
    return Role.SUPERVISOR in actor.roles


def is_system(actor: Actor) -> bool:
    return actor.id == SYSTEM.id


def is_owner(ticket: Ticket, actor: Actor) -> bool:
    return ticket.owner.agent is not None and ticket.owner.agent.id == actor.id


def is_first_handler(ticket: Ticket, actor: Actor) -> bool:
    return ticket.first_handler is not None and ticket.first_handler.id == actor.id


def may_act(ticket: Ticket, actor: Actor) -> bool:
    """The owner, the first handler (who tracks the ticket while it is away), or a supervisor."""
    return is_owner(ticket, actor) or is_first_handler(ticket, actor) or is_supervisor(actor)


def may_take(ticket: Ticket, actor: Actor) -> bool:
    """Claiming unowned work is for agents of the owning role (and supervisors)."""
    return ticket.owner.agent is None and (ticket.owner.role in actor.roles or is_supervisor(actor))


def may_record_result(handoff: Handoff, actor: Actor) -> bool:
    if is_supervisor(actor):
        return True
    if handoff.taken_by is not None:
        return handoff.taken_by.id == actor.id
    return handoff.role in actor.roles


def may_finish(ticket: Ticket, actor: Actor) -> bool:
    """Resolving and closing belong to the first handler (§5.6) or a supervisor."""
    return is_first_handler(ticket, actor) or is_supervisor(actor)


def works_on(ticket: Ticket, actor: Actor) -> bool:
    """Someone with a part in the ticket's flow: its owner, or a role it was ever handed to.

    Decides between the two refusals of Resolve/Close: a participant who is not the first
    handler hears `not_first_handler`; a stranger hears `not_owner`, naming the owner.
    """
    return (
        may_act(ticket, actor)
        or may_take(ticket, actor)
        or any(may_record_result(h, actor) for h in ticket.handoffs)
    )


# --------------------------------------------------------------------------------------------
# The rules. Each returns None when it holds, else the rejection that names it.


def expected_version_matches(ticket: Ticket, command: Command) -> Rejected | None:
    expected = command.expected_version
    if expected is None or expected == ticket.version:
        return None
    return Rejected(
        RejectionCode.VERSION_CONFLICT,
        f"ticket {ticket.id} is at version {ticket.version}, "
        f"the command expected version {expected}",
        "expected_version_matches",
    )


def closed_ticket_is_final(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status is not TicketStatus.CLOSED:
        return None
    return _invalid(ticket, command, "it is closed", "closed_ticket_is_final")


def only_owner_or_tracker_may_act(ticket: Ticket, actor: Actor) -> Rejected | None:
    if may_act(ticket, actor):
        return None
    return _not_owner(
        ticket, "only the owner or a supervisor may act", "only_owner_or_tracker_may_act"
    )


def only_system_or_supervisor_may_assign(ticket: Ticket, actor: Actor) -> Rejected | None:
    if is_system(actor) or is_supervisor(actor):
        return None
    return _not_owner(
        ticket,
        "only auto-assignment or a supervisor may assign it",
        "only_system_or_supervisor_may_assign",
    )


def only_one_agent_owns_the_work(ticket: Ticket, agent: AgentRef) -> Rejected | None:
    """Claim/Assign: unowned work only; a ticket is never taken from its owner."""
    owner = ticket.owner.agent
    if owner is None:
        return None
    if owner.id == agent.id:
        return Rejected(
            RejectionCode.INVALID_TRANSITION,
            f"ticket {ticket.id} is already owned by {ticket.owner}",
            "only_one_agent_owns_the_work",
        )
    return _not_owner(
        ticket, "only the owner or a supervisor may act", "only_one_agent_owns_the_work"
    )


def only_the_owning_role_may_claim(ticket: Ticket, actor: Actor) -> Rejected | None:
    if may_take(ticket, actor):
        return None
    role = ticket.owner.role
    return _not_owner(
        ticket,
        f"only a {role} agent or a supervisor may claim it",
        "only_the_owning_role_may_claim",
    )


def resolved_ticket_takes_no_new_work(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status is not TicketStatus.RESOLVED:
        return None
    return _invalid(ticket, command, "it is resolved", "resolved_ticket_takes_no_new_work")


def handoff_ids_are_unique(ticket: Ticket, command: Command, handoff_id: str) -> Rejected | None:
    if ticket.handoff(handoff_id) is None:
        return None
    return _invalid(
        ticket, command, f"handoff {handoff_id} already exists", "handoff_ids_are_unique"
    )


def result_is_for_a_known_handoff(ticket: Ticket, command: RecordResult) -> Rejected | None:
    if ticket.handoff(command.handoff_id) is not None:
        return None
    return _invalid(
        ticket, command, f"it has no handoff {command.handoff_id}", "result_is_for_a_known_handoff"
    )


def only_the_handoff_role_records_its_result(
    ticket: Ticket, handoff: Handoff, actor: Actor
) -> Rejected | None:
    if may_record_result(handoff, actor):
        return None
    holder = (
        f"{handoff.role} agent {handoff.taken_by}"
        if handoff.taken_by is not None
        else f"the {handoff.role} role"
    )
    return Rejected(
        RejectionCode.NOT_OWNER,
        f"handoff {handoff.id} of ticket {ticket.id} is owned by {holder}; "
        f"only they or a supervisor may record its result",
        "only_the_handoff_role_records_its_result",
    )


def a_result_is_recorded_once(
    ticket: Ticket, handoff: Handoff, command: Command
) -> Rejected | None:
    if handoff.is_open:
        return None
    return _invalid(
        ticket, command, f"handoff {handoff.id} already has its result", "a_result_is_recorded_once"
    )


def only_first_handler_may_finish(ticket: Ticket, actor: Actor, verb: str) -> Rejected | None:
    if may_finish(ticket, actor):
        return None
    if not works_on(ticket, actor):
        return _not_owner(
            ticket, "only the owner or a supervisor may act", "only_first_handler_may_finish"
        )
    tracker = ticket.first_handler if ticket.first_handler is not None else "nobody yet"
    return Rejected(
        RejectionCode.NOT_FIRST_HANDLER,
        f"ticket {ticket.id}'s first handler is {tracker}; "
        f"only the first handler or a supervisor may {verb} it",
        "only_first_handler_may_finish",
    )


def no_handoffs_pending(ticket: Ticket) -> Rejected | None:
    pending = ticket.open_handoffs
    if not pending:
        return None
    listed = ", ".join(f"{h.id} ({h.role}: {h.task.action})" for h in pending)
    return Rejected(
        RejectionCode.HANDOFFS_PENDING,
        f"ticket {ticket.id} still waits for handoff results: {listed}",
        "no_handoffs_pending",
    )


def resolve_once(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status is not TicketStatus.RESOLVED:
        return None
    return _invalid(ticket, command, "it is already resolved", "resolve_once")


def close_only_after_resolve(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status is TicketStatus.RESOLVED:
        return None
    return _invalid(
        ticket, command, f"it is {ticket.status}, not resolved", "close_only_after_resolve"
    )


def escalate_once_at_a_time(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status not in (TicketStatus.ESCALATED, TicketStatus.RESOLVED):
        return None
    return _invalid(ticket, command, f"it is {ticket.status}", "escalate_once_at_a_time")


def only_supervisor_may_reassign(ticket: Ticket, actor: Actor) -> Rejected | None:
    if is_supervisor(actor):
        return None
    return _not_owner(
        ticket, "only a supervisor may reassign the first handler", "only_supervisor_may_reassign"
    )


def reassign_an_existing_first_handler(
    ticket: Ticket, command: ReassignFirstHandler
) -> Rejected | None:
    if ticket.first_handler is None:
        reason = "nobody has taken it yet (assign it instead)"
    elif ticket.first_handler.id == command.new_first_handler.id:
        reason = f"{ticket.first_handler} already is its first handler"
    else:
        return None
    return _invalid(ticket, command, reason, "reassign_an_existing_first_handler")


def _not_owner(ticket: Ticket, who_may: str, rule: str) -> Rejected:
    tracking = ""
    if ticket.first_handler is not None and ticket.owner.agent != ticket.first_handler:
        first = ticket.first_handler
        tracking = f", tracked by its first handler {first.name} ({first.id})"
    return Rejected(
        RejectionCode.NOT_OWNER,
        f"ticket {ticket.id} is owned by {ticket.owner}{tracking}; {who_may}",
        rule,
    )


def _invalid(ticket: Ticket, command: Command, why: str, rule: str) -> Rejected:
    return Rejected(
        RejectionCode.INVALID_TRANSITION,
        f"cannot {_action(command)} ticket {ticket.id}: {why}",
        rule,
    )


# --------------------------------------------------------------------------------------------
# The decision


def decide(ticket: Ticket, command: Command) -> Decision:
    """Check `command` against every rule; accept it with its effects or say which rule broke."""
    if rejected := (
        expected_version_matches(ticket, command) or closed_ticket_is_final(ticket, command)
    ):
        return rejected
    match command:
        case Claim():
            return _claim(ticket, command)
        case Assign():
            return _assign(ticket, command)
        case Reply():
            return _reply(ticket, command)
        case HandOff():
            return _hand_off(ticket, command)
        case RecordResult():
            return _record_result(ticket, command)
        case Resolve():
            return _resolve(ticket, command)
        case Close():
            return _close(ticket, command)
        case Escalate():
            return _escalate(ticket, command)
        case ReassignFirstHandler():
            return _reassign_first_handler(ticket, command)
        case _:
            assert_never(command)


def _claim(ticket: Ticket, command: Claim) -> Decision:
    actor = command.actor
    if rejected := (
        only_one_agent_owns_the_work(ticket, actor.ref)
        or resolved_ticket_takes_no_new_work(ticket, command)
        or only_the_owning_role_may_claim(ticket, actor)
    ):
        return rejected
    after, handoff_id, first = _take(ticket, actor.ref)
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            TicketClaimed(
                **stamp, owner=after.owner, handoff_id=handoff_id, became_first_handler=first
            ),
        ),
        {"owner": _owner_detail(after.owner), "handoff_id": handoff_id},
    )


def _assign(ticket: Ticket, command: Assign) -> Decision:
    # The roster picked an agent of the owning role (roster.choose_assignee); a reference
    # carries no roles, so that is not checked again here.
    if rejected := (
        only_system_or_supervisor_may_assign(ticket, command.actor)
        or only_one_agent_owns_the_work(ticket, command.agent)
        or resolved_ticket_takes_no_new_work(ticket, command)
    ):
        return rejected
    after, handoff_id, first = _take(ticket, command.agent)
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            TicketAssigned(
                **stamp, owner=after.owner, handoff_id=handoff_id, became_first_handler=first
            ),
        ),
        {"owner": _owner_detail(after.owner), "handoff_id": handoff_id},
    )


def _take(ticket: Ticket, agent: AgentRef) -> tuple[Ticket, str | None, bool]:
    """Give the unowned work to `agent`: the queued ticket itself, or the handoff owning it.

    Returns the new ticket, the handoff taken (None for the ticket) and whether `agent` became
    the first handler.
    """
    current = ticket.open_handoffs[-1] if ticket.open_handoffs else None
    if current is None:
        # §5.2: the first agent to take a queued ticket owns it and is its first handler.
        # (Only a queued ticket has no owning agent and no open handoff.)
        taken = replace(
            ticket,
            first_handler=agent,
            owner=Owner(ticket.owner.role, agent),
            status=TicketStatus.IN_PROGRESS,
        )
        return taken, None, True
    handoffs = tuple(replace(h, taken_by=agent) if h is current else h for h in ticket.handoffs)
    return _settled(replace(ticket, handoffs=handoffs)), current.id, False


def _reply(ticket: Ticket, command: Reply) -> Decision:
    if rejected := only_owner_or_tracker_may_act(ticket, command.actor):
        return rejected
    first = ticket.first_response_at is None
    after = replace(ticket, first_response_at=command.at) if first else ticket
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (TicketReplied(**stamp, text=command.text, first_response=first),),
        {"first_response": first},
    )


def _hand_off(ticket: Ticket, command: HandOff) -> Decision:
    if rejected := (
        only_owner_or_tracker_may_act(ticket, command.actor)
        or resolved_ticket_takes_no_new_work(ticket, command)
        or handoff_ids_are_unique(ticket, command, command.handoff_id)
    ):
        return rejected
    handoff = Handoff(
        id=command.handoff_id,
        role=command.role,
        task=command.task,
        opened_at=command.at,
        opened_by=command.actor.ref,
    )
    after = _settled(replace(ticket, handoffs=(*ticket.handoffs, handoff)))
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            HandoffRequested(
                **stamp,
                handoff_id=handoff.id,
                role=handoff.role,
                task=handoff.task,
                first_handler=after.first_handler,
            ),
        ),
        {
            "handoff_id": handoff.id,
            "role": str(handoff.role),
            "task": {"action": handoff.task.action, "data": dict(handoff.task.data)},
            "owner": _owner_detail(after.owner),
        },
    )


def _record_result(ticket: Ticket, command: RecordResult) -> Decision:
    if rejected := result_is_for_a_known_handoff(ticket, command):
        return rejected
    handoff = ticket.handoff(command.handoff_id)
    assert handoff is not None  # checked just above
    if rejected := (
        only_the_handoff_role_records_its_result(ticket, handoff, command.actor)
        or a_result_is_recorded_once(ticket, handoff, command)
    ):
        return rejected
    result = HandoffResult(
        outcome=command.outcome, data=command.data, at=command.at, by=command.actor.ref
    )
    handoffs = tuple(replace(h, result=result) if h is handoff else h for h in ticket.handoffs)
    after = _settled(replace(ticket, handoffs=handoffs))
    back_home = not after.open_handoffs

    def events(stamp: _Stamp) -> tuple[Event, ...]:
        recorded = HandoffResultRecorded(
            **stamp,
            handoff_id=handoff.id,
            role=handoff.role,
            result=result,
            first_handler=after.first_handler,
        )
        if not back_home:
            return (recorded,)
        if after.first_handler is None:
            return (recorded, TicketRequeued(**stamp, owner=after.owner))
        return (recorded, TicketReturnedToFirstHandler(**stamp, owner=after.owner))

    return _accept(
        ticket,
        after,
        command,
        events,
        {
            "handoff_id": handoff.id,
            "role": str(handoff.role),
            "outcome": command.outcome,
            "data": dict(command.data),
            "owner": _owner_detail(after.owner),
            "returned_to_first_handler": back_home,
        },
    )


def _resolve(ticket: Ticket, command: Resolve) -> Decision:
    if rejected := (
        only_first_handler_may_finish(ticket, command.actor, "resolve")
        or resolve_once(ticket, command)
        or no_handoffs_pending(ticket)
    ):
        return rejected
    after = replace(
        ticket, status=TicketStatus.RESOLVED, resolution=command.summary, resolved_at=command.at
    )
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (TicketResolved(**stamp, summary=command.summary),),
        {"summary": command.summary},
    )


def _close(ticket: Ticket, command: Close) -> Decision:
    if rejected := (
        only_first_handler_may_finish(ticket, command.actor, "close")
        or close_only_after_resolve(ticket, command)
    ):
        return rejected
    after = replace(ticket, status=TicketStatus.CLOSED, closed_at=command.at)
    return _accept(ticket, after, command, lambda stamp: (TicketClosed(**stamp),), {})


def _escalate(ticket: Ticket, command: Escalate) -> Decision:
    actor = command.actor
    allowed = None if is_system(actor) else only_owner_or_tracker_may_act(ticket, actor)
    if rejected := (
        allowed
        or escalate_once_at_a_time(ticket, command)
        or handoff_ids_are_unique(ticket, command, command.handoff_id)
    ):
        return rejected
    escalation = Escalation(
        handoff_id=command.handoff_id,
        category=command.category,
        customer_info=command.customer_info,
        problem=command.problem,
        actions_taken=command.actions_taken,
        customer_demand=command.customer_demand,
        responsible=command.responsible,
        deadline=command.deadline,
        opened_at=command.at,
        opened_by=actor.ref,
    )
    # The responsible person has taken the supervisor handoff from the start, so they own it.
    handoff = Handoff(
        id=escalation.handoff_id,
        role=Role.SUPERVISOR,
        task=Task(ESCALATION_ACTION, {"category": str(command.category)}),
        opened_at=command.at,
        opened_by=actor.ref,
        taken_by=command.responsible,
    )
    after = _settled(replace(ticket, handoffs=(*ticket.handoffs, handoff), escalation=escalation))
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            TicketEscalated(**stamp, escalation=escalation, first_handler=after.first_handler),
        ),
        {
            "handoff_id": handoff.id,
            "category": str(command.category),
            "responsible": _ref_detail(command.responsible),
            "deadline": command.deadline.isoformat(),
            "owner": _owner_detail(after.owner),
        },
        reason=f"{command.category}: {command.problem}",
    )


def _reassign_first_handler(ticket: Ticket, command: ReassignFirstHandler) -> Decision:
    if rejected := (
        only_supervisor_may_reassign(ticket, command.actor)
        or reassign_an_existing_first_handler(ticket, command)
    ):
        return rejected
    previous = ticket.first_handler
    assert previous is not None  # checked just above
    new = command.new_first_handler
    # The owner follows only if the ticket is at home with the old first handler; work that is
    # away stays with whoever does it and will come back to the new one.
    home = Owner(ticket.first_handler_role, new)
    owner = ticket.owner if ticket.open_handoffs else home
    after = replace(ticket, first_handler=new, owner=owner)
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            FirstHandlerReassigned(
                **stamp, previous=previous, new=new, reason=command.reason, owner=after.owner
            ),
        ),
        {
            "from": _ref_detail(previous),
            "to": _ref_detail(new),
            "owner": _owner_detail(after.owner),
        },
        reason=command.reason,
    )


def _settled(ticket: Ticket) -> Ticket:
    """Owner and status as they follow from the open handoffs (§5.4, §5.5, §5.8).

    Work away: the newest open handoff owns the ticket (the agent who took it, else its role).
    Nothing away: the ticket is home with its first handler, or waiting in its queue.
    """
    pending = ticket.open_handoffs
    if pending:
        newest = pending[-1]
        escalated = ticket.escalation is not None and any(
            h.id == ticket.escalation.handoff_id for h in pending
        )
        return replace(
            ticket,
            owner=Owner(newest.role, newest.taken_by),
            status=TicketStatus.ESCALATED if escalated else TicketStatus.HANDED_OFF,
        )
    home = TicketStatus.IN_PROGRESS if ticket.first_handler is not None else TicketStatus.QUEUED
    return replace(ticket, owner=ticket.home_owner, status=home)


def _accept(
    before: Ticket,
    after: Ticket,
    command: Command,
    events: _EventFactory,
    detail: Mapping[str, object],
    *,
    reason: str | None = None,
) -> Accepted:
    ticket = replace(after, version=before.version + 1)
    stamp = _Stamp(ticket_id=ticket.id, version=ticket.version, at=command.at, by=command.actor.ref)
    history = HistoryEntry(
        at=command.at,
        actor_id=command.actor.id,
        actor_name=command.actor.name,
        action=_action(command),
        detail=dict(detail),
        reason=reason,
        message_id=command.message_id,
    )
    return Accepted(ticket=ticket, events=events(stamp), history=history)


def _action(command: Command) -> str:
    return type(command).__name__


def _ref_detail(agent: AgentRef) -> dict[str, str]:
    return {"id": agent.id, "name": agent.name}


def _owner_detail(owner: Owner) -> dict[str, object]:
    agent = None if owner.agent is None else _ref_detail(owner.agent)
    return {"role": str(owner.role), "agent": agent}


def _require_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {at!r}")


def _require_text(text: str, what: str) -> None:
    if not text.strip():
        raise ValueError(f"{what} must not be blank")
