"""The agent CLI on tickets: reads and actions as requests to the workers (no database).

Reads (`ticketq tickets list|show`, `tasks`) are signed requests a worker answers from the read
model, masked (`shared.cli.reads`). Actions
(`ticketq claim|reply|handoff|result|resolve|close|escalate|reassign|step`) are `TicketCommand`s
sent over AMQP to the worker of the role that owns the ticket (`rpc.queue_for`); the agent sees at
once "accepted: ..." or "rejected (code): ..." (exit 0 or 1).

Customer personal data (SPEC §10) is masked in everything shown, unless a supervisor asks
`tickets show ID --reveal --as THEIR_ID`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from pydantic import TypeAdapter

from shared.agents.cli import clock
from shared.agents.roster import SHOP_TIMEZONE
from shared.cli.commands import (
    ActorOpt,
    JsonOpt,
    TicketId,
    build,
    send_command,
    ticket_action,
)
from shared.cli.output import (
    Column,
    Refused,
    cell,
    emit,
    fail,
    fields,
    run,
    shop_time,
    table,
)
from shared.cli.reads import read, revive
from shared.cli.session import acting_as
from shared.config import get_settings
from shared.messaging.envelope import Contract
from shared.tickets import HANDOFF_ROLES, EscalationCategory, Ticket, TicketStatus
from shared.tickets.contracts import (
    ClaimArgs,
    CloseArgs,
    CommandArgs,
    EscalateArgs,
    HandOffArgs,
    ReassignArgs,
    RecordResultArgs,
    ReplyArgs,
    ResolveArgs,
    RevealTicket,
    StepArgs,
    TakeOverChaseArgs,
)
from shared.tickets.read_model import Page
from shared.tickets.read_requests import ListTasks, ListTickets, ShowTicket
from shared.tickets.roles import Role

tickets_app = typer.Typer(help="Read tickets: list and show.", no_args_is_help=True)

C = TypeVar("C", bound=Contract)

TICKET = TypeAdapter(Ticket)


# --------------------------------------------------------------------------------------------
# Personal data


# --------------------------------------------------------------------------------------------
# tickets list


def _owner_text(role: str, agent_id: str | None, name: str | None) -> str:
    if agent_id is None:
        return f"{role} (queue)"
    return f"{role} {name or '?'} ({agent_id})"


def _list_text(tickets: Sequence[Mapping[str, Any]], show_absence: bool) -> str:
    rows = []
    for t in tickets:
        agent = t["owner"]["agent"]
        fh = t["first_handler"]
        rows.append(
            {
                **t,
                "owner": _owner_text(
                    t["owner"]["role"], agent and agent["id"], agent and agent["name"]
                ),
                "first_handler": None if fh is None else f"{fh['name']} ({fh['id']})",
                "absent": None if fh is None else fh["absent"],
                "opened": shop_time(t["opened_at"], seconds=False),
            }
        )
    columns = [
        Column("id"),
        Column("kind"),
        Column("status"),
        Column("owner"),
        Column("first_handler", "FIRST HANDLER"),
        *([Column("absent", "ABSENT")] if show_absence else []),
        Column("version", "V", align="right"),
        Column("open_handoffs", "OUT", align="right"),
        Column("opened", "OPENED"),
        Column("customer", max_width=12),
        Column("subject", max_width=30),
    ]
    return table(rows, columns, empty="no tickets")


@tickets_app.command("list")
def tickets_list(
    role: Annotated[Role | None, typer.Option("--role", help="Owned by this role")] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", metavar="AGENT", help="Owned by this agent")
    ] = None,
    status: Annotated[
        TicketStatus | None,
        typer.Option("--status", help="In this status (default: any but closed)"),
    ] = None,
    waiting_for: Annotated[
        str | None,
        typer.Option(
            "--waiting-for",
            metavar="AGENT",
            help="What AGENT may take up now: tickets they own, tickets queued for one of "
            "their roles, handoffs to one of their roles nobody took yet",
        ),
    ] = None,
    absent_first_handler: Annotated[
        bool,
        typer.Option(
            "--absent-first-handler",
            help="Supervisor view (SPEC §5.7): tickets back with their first handler, who is "
            "offline or off shift now",
        ),
    ] = False,
    due_within: Annotated[
        str | None,
        typer.Option(
            "--due-within",
            metavar="DURATION",
            help="A clock runs out within DURATION (e.g. 10m, 2h, 1d): a timer due by then",
        ),
    ] = None,
    breached: Annotated[
        bool, typer.Option("--breached", help="Tickets with a service-level breach recorded")
    ] = False,
    include_closed: Annotated[bool, typer.Option("--all", help="Include closed tickets")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Tickets per page")] = 100,
    page: Annotated[int, typer.Option("--page", min=1, help="Which page (1: newest)")] = 1,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List tickets, newest first, a page at a time; says how many matched (on stderr, so
    --json stays a plain list). Filters combine (all must hold)."""
    within = None if due_within is None else parse_duration(due_within, "--due-within")
    answer = read(
        ListTickets,
        actor,
        role=role,
        owner=owner,
        status=status.value if status else None,
        waiting_for=waiting_for,
        absent_first_handler=absent_first_handler,
        due_within_seconds=None if within is None else int(within.total_seconds()),
        breached=breached,
        include_closed=include_closed,
        limit=limit,
        offset=(page - 1) * limit,
    )
    found = Page(answer["rows"], answer["total"], answer["offset"])
    emit(found.rows, as_json=as_json, text=lambda: _list_text(found.rows, absent_first_handler))
    shown = f"{found.offset + 1}-{found.offset + len(found.rows)}" if found.rows else "none"
    more = found.offset + len(found.rows) < found.total
    if more or not as_json:
        typer.echo(
            f"{shown} of {found.total} matching"
            + (f"; --page {page + 1} for more" if more else ""),
            err=True,
        )


# --------------------------------------------------------------------------------------------
# tickets show


def _agent_text(ref: Mapping[str, Any] | None) -> str:
    return "-" if ref is None else f"{ref['name']} ({ref['id']})"


def _customer_text(customer: Mapping[str, Any] | None) -> str:
    if not customer:
        return "-"
    parts = [f"{customer.get('nick', '?')} ({customer.get('id', '?')})"]
    parts += [f"{k} {v}" for k, v in customer.items() if k not in ("id", "nick") and v is not None]
    return " · ".join(cell(p) for p in parts)


def _order_text(order: Mapping[str, Any] | None) -> str:
    if not order:
        return "-"
    parts = [str(order.get("id", "?"))]
    if order.get("amount") is not None:
        parts.append(f"amount {order['amount']}")
    for key in ("paid_at", "shipped_at", "signed_at"):
        if order.get(key):
            at = datetime.fromisoformat(str(order[key]))
            parts.append(f"{key.removesuffix('_at')} {shop_time(at, seconds=False)}")
    items = order.get("items") or []
    if items:
        parts.append(
            ", ".join(f"{i.get('title', i.get('sku', '?'))} x{i.get('quantity', 1)}" for i in items)
        )
    return " · ".join(cell(p) for p in parts)


def _left_text(seconds: float) -> str:
    """Time left on a clock: `1h05m`, `0m20s`; overdue as `-2m00s`."""
    sign, rest = ("-" if seconds < 0 else ""), round(abs(seconds))
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}h{minutes:02d}m" if hours else f"{sign}{minutes}m{secs:02d}s"


def show_text(view: Mapping[str, Any]) -> str:
    owner = view["owner"]
    fh = view["first_handler"]
    fh_text = "-"
    if fh is not None:
        fh_text = f"{fh['name']} ({fh['id']}), {fh['role']}"
        if fh["tracking"]:
            fh_text += " · tracking"
    owner_text = _owner_text(
        owner["role"],
        owner["agent"] and owner["agent"]["id"],
        owner["agent"] and owner["agent"]["name"],
    )
    lines = [
        f"ticket {view['id']}  {view['kind']} · {view['status']} · version {view['version']}"
        + ("" if view.get("revealed") else "  (personal data masked)"),
        fields(
            [
                ("subject", view["subject"]),
                ("text", view["body"] or "-"),
                ("customer", _customer_text(view["customer"])),
                ("order", _order_text(view["order"])),
                (
                    "channel",
                    f"{view['channel']} · priority {view['priority']} · "
                    f"{view['source']}/{view['external_id']}",
                ),
                ("opened", shop_time(view["opened_at"])),
                ("owner", owner_text),
                ("first handler", fh_text),
                ("first response", shop_time(view["first_response_at"])),
                *(
                    [("resolution", f"{view['resolution']} ({shop_time(view['resolved_at'])})")]
                    if view["resolution"]
                    else []
                ),
                *([("closed", shop_time(view["closed_at"]))] if view["closed_at"] else []),
            ],
            indent="  ",
        ),
    ]
    if view["attachments"]:
        lines.append(f"  attachments  {cell(view['attachments'])}")
    lines += ["", "clocks"]
    lines.append(
        table(
            [
                {**c, "due": shop_time(c["due_at"]), "left": _left_text(c["left_seconds"])}
                for c in view.get("clocks", [])
            ],
            [Column("kind"), Column("clock"), Column("due", "DUE"), Column("left", "LEFT")],
            empty="(no clock running)",
            indent="  ",
        )
    )
    if view.get("flow"):
        lines += ["", flow_text(view["flow"])]
    lines += ["", "handoffs"]
    lines.append(
        table(
            [
                {
                    **h,
                    "opened": f"{shop_time(h['opened_at'], seconds=False)} "
                    f"{_agent_text(h['opened_by'])}",
                    "taken_by": _agent_text(h["taken_by"]),
                    "result": None
                    if h["result"] is None
                    else f"{_agent_text(h['result']['by'])}: {cell(h['result']['data'])}",
                }
                for h in view["handoffs"]
            ],
            [
                Column("id", max_width=24),
                Column("role"),
                Column("action"),
                Column("data", max_width=40),
                Column("opened"),
                Column("taken_by", "TAKEN BY"),
                Column("state"),
                Column("result", max_width=50),
            ],
            indent="  ",
        )
    )
    if view["escalation"]:
        e = view["escalation"]
        lines += [
            "",
            "escalation",
            fields(
                [
                    ("category", e["category"]),
                    ("responsible", _agent_text(e["responsible"])),
                    ("deadline", shop_time(e["deadline"])),
                    ("problem", e["problem"]),
                    ("actions taken", e["actions_taken"]),
                    ("customer asks", e["customer_demand"]),
                    ("customer info", e["customer_info"] or "-"),
                    ("raised", f"{shop_time(e['opened_at'])} by {_agent_text(e['opened_by'])}"),
                ],
                indent="  ",
            ),
        ]
    lines += ["", "contacts"]
    lines.append(
        table(
            [
                {**c, "from": f"{c['source']}/{c['external_id']}", "text": c["subject"]}
                for c in view["contacts"]
            ],
            [
                Column("occurred_at", "WHEN"),
                Column("from"),
                Column("channel"),
                Column("is_follow_up", "FOLLOW-UP"),
                Column("text", max_width=50),
            ],
            indent="  ",
        )
    )
    lines += ["", f"history ({SHOP_TIMEZONE.key})"]
    lines.append(
        table(
            [
                {**h, "who": f"{h['actor_name']} ({h['actor_id']})", "detail": h["detail"] or None}
                for h in view["history"]
            ],
            [
                Column("at", "TIME"),
                Column("who"),
                Column("action"),
                Column("reason", max_width=40),
                Column("detail", max_width=70),
            ],
            indent="  ",
        )
    )
    return "\n".join(lines)


def flow_text(flow: Mapping[str, Any]) -> str:
    """The current step: the question and the moves allowed now."""
    head = f"flow {flow['flow']} · at {flow['state']} ({flow['type'] or '?'}) since "
    lines = [head + shop_time(flow["entered_at"], seconds=False), f"  {flow['question']}"]
    if flow["answers"]:
        lines.append(f"  answers: {', '.join(flow['answers'])}")
    for answer, guard in (flow.get("guards") or {}).items():
        lines.append(f"  {answer} only if {guard}")
    if timeout := flow.get("timeout"):
        lines.append(
            f"  timeout: {timeout['timer']} ({timeout['after']}) due "
            f"{shop_time(timeout['due_at'], seconds=False)}, then {timeout['then']}"
        )
    if flow.get("waits_for"):
        lines.append(f"  waits for handoff {flow['handoff_id']} ({flow['waits_for']})")
    if flow.get("loss_reasons"):
        lines.append(f"  loss reasons (--reason): {', '.join(flow['loss_reasons'])}")
    if flow["end_reason"]:
        lines.append(f"  ended: {flow['end_reason']}")
    return "\n".join(lines)


@tickets_app.command("show")
def tickets_show(
    ticket_id: TicketId,
    reveal: Annotated[
        bool,
        typer.Option("--reveal", help="Show personal data unmasked (supervisors signed in only)"),
    ] = False,
    actor: Annotated[
        str | None,
        typer.Option("--as", metavar="AGENT", envvar="TICKETQ_AGENT", help="Who is asking"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One ticket: owner, first handler, handoffs, contacts and its whole history."""

    if reveal:  # through the worker, which checks the role and records the reveal first
        agent, token = acting_as(actor)
        reply = run(
            send_command(
                get_settings(), RevealTicket(ticket_id=ticket_id, actor_id=agent), token=token
            )
        )
        if not reply.accepted:
            fail(
                Refused(
                    f"--reveal is for supervisors only: {reply.message} (personal data stays "
                    "masked)",
                    code=reply.code,
                )
            )
        shown: dict[str, Any] = {**revive(reply.data), "revealed": True}
    else:  # masked by the worker
        shown = {**read(ShowTicket, actor, ticket_id=ticket_id), "revealed": False}
    emit(shown, as_json=as_json, text=lambda: show_text(shown))


# --------------------------------------------------------------------------------------------
# Actions: commands to the workers


# The roles work can be handed to (§5.4), as the choices of `handoff --to`.
HandoffRole = StrEnum(  # type: ignore[misc]
    "HandoffRole", {r.name: r.value for r in sorted(HANDOFF_ROLES)}
)

DataOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--data",
        metavar="KEY=VALUE",
        help="Task or result data, repeatable; VALUE is read as JSON when it is "
        "(numbers with a fraction stay text: 59.00)",
    ),
]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a value")


def parse_data(items: Sequence[str] | None, option: str = "--data") -> dict[str, Any]:
    """`KEY=VALUE` pairs as a dict; values JSON when they parse, else text.

    Numbers with a fraction or exponent stay text ("59.00"), never binary floats: they are
    money more often than not.
    """
    data: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        if key in data:
            raise typer.BadParameter(f"{key!r} given twice", param_hint=option)
        try:
            data[key] = json.loads(raw, parse_float=str, parse_constant=_no_constant)
        except ValueError:
            data[key] = raw
    return data


_RELATIVE = re.compile(r"^\+?(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str, option: str) -> timedelta:
    """`30s`, `10m`, `2h`, `1d`."""
    if match := _RELATIVE.match(text.strip()):
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    raise typer.BadParameter(f"expected a duration like 10m or 2h, got {text!r}", param_hint=option)


def parse_deadline(text: str, now: datetime, option: str = "--deadline") -> datetime:
    """ISO 8601 (shop local time when no offset is given) or from now: `+30m`, `2h`, `+1d`."""
    if _RELATIVE.match(text.strip()):
        return now + parse_duration(text, option)
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO time like 2026-11-24T18:00 or +2h, got {text!r}",
            param_hint=option,
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=SHOP_TIMEZONE)
    if at <= now:
        raise typer.BadParameter(f"{shop_time(at)} is not in the future", param_hint=option)
    return at


def register_actions(app: typer.Typer) -> None:
    """Add the action commands to `app` (top level: `ticketq claim ID ...`)."""

    @ticket_action(app, "claim")
    def claim() -> CommandArgs:
        """Take a queued ticket (you become its first handler) or a handoff to your role."""
        return ClaimArgs()

    @ticket_action(app, "reply")
    def reply(
        text: Annotated[str, typer.Argument(help="What you tell the customer")],
        promise: Annotated[
            str | None,
            typer.Option(
                "--promise",
                metavar="WHEN",
                help="You promise the next reply by WHEN: 2h, +30m or an ISO time (shop time "
                "if no offset); you are reminded then, and it escalates if missed",
            ),
        ] = None,
    ) -> CommandArgs:
        """Answer the customer (the first answer is the ticket's first response)."""
        by = None if promise is None else parse_deadline(promise, clock().now(), "--promise")
        return build(ReplyArgs, text=text, promise_by=by)

    @ticket_action(app, "handoff")
    def handoff(
        to: Annotated[HandoffRole, typer.Option("--to", help="The role that does the task")],
        action: Annotated[
            str, typer.Option("--action", help="The task, e.g. refund, pick_up_return")
        ],
        data: DataOpt = None,
    ) -> CommandArgs:
        """Hand work to another role with a task; you keep tracking the ticket (§5.4)."""
        return build(HandOffArgs, role=Role(to.value), action=action, data=parse_data(data))

    @ticket_action(app, "result")
    def result(
        handoff_id: Annotated[str, typer.Argument(metavar="HANDOFF_ID")],
        done: Annotated[
            bool, typer.Option("--done/--failed", help="How the task ended", show_default=False)
        ],
        data: DataOpt = None,
    ) -> CommandArgs:
        """Report a handoff's result; it goes back to the ticket's first handler (§5.5)."""
        return build(
            RecordResultArgs,
            handoff_id=handoff_id,
            outcome="done" if done else "failed",
            data=parse_data(data),
        )

    @ticket_action(app, "resolve")
    def resolve(
        summary: Annotated[str, typer.Argument(help="What the customer was told")],
    ) -> CommandArgs:
        """Mark the ticket resolved: the customer was told the result (first handler)."""
        return build(ResolveArgs, summary=summary)

    @ticket_action(app, "close")
    def close() -> CommandArgs:
        """Close a resolved ticket (first handler or supervisor)."""
        return CloseArgs()

    @ticket_action(app, "escalate")
    def escalate(
        category: Annotated[EscalationCategory, typer.Option("--category")],
        problem: Annotated[str, typer.Option("--problem", help="The problem (问题描述)")],
        actions_taken: Annotated[
            str, typer.Option("--actions-taken", help="What was done so far (已处理措施)")
        ],
        demand: Annotated[str, typer.Option("--demand", help="What the customer asks for")],
        responsible: Annotated[
            str, typer.Option("--responsible", metavar="AGENT", help="Responsible person")
        ],
        deadline: Annotated[
            str,
            typer.Option(
                "--deadline", help="By when: ISO time (shop time if no offset) or +2h, +1d"
            ),
        ],
        customer_info: Annotated[
            list[str] | None,
            typer.Option("--customer-info", metavar="KEY=VALUE", help="Customer info, repeatable"),
        ] = None,
    ) -> CommandArgs:
        """Escalate to the supervisor (§5.8); you keep tracking the ticket."""
        return build(
            EscalateArgs,
            category=category.value,
            customer_info=parse_data(customer_info, "--customer-info"),
            problem=problem,
            actions_taken=actions_taken,
            customer_demand=demand,
            responsible_id=responsible,
            deadline=parse_deadline(deadline, clock().now()),
        )

    @ticket_action(app, "chase")
    def chase() -> Contract:
        """Pre-sale: take over the chase of an order unpaid 24 h whose first handler is away
        (追单); you become its first handler and the order's credit is yours."""
        return TakeOverChaseArgs()

    @ticket_action(app, "reassign")
    def reassign(
        to: Annotated[str, typer.Option("--to", metavar="AGENT", help="The new first handler")],
        reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history)")],
    ) -> CommandArgs:
        """Supervisor: give the ticket a new first handler, with the reason (§5.7)."""
        return build(ReassignArgs, new_first_handler_id=to, reason=reason)

    @ticket_action(app, "step")
    def step(
        answer: Annotated[
            str, typer.Option("--answer", help="The answer at the current step (tickets show)")
        ],
        note: Annotated[
            str | None, typer.Option("--note", help="What was said or found (history)")
        ] = None,
        reason: Annotated[
            str | None,
            typer.Option("--reason", help="A loss reason from the flow's list, when it ends so"),
        ] = None,
    ) -> CommandArgs:
        """Move the ticket on its flow: answer its current question."""
        return build(StepArgs, answer=answer, note=note, reason=reason)


def _data_text(data: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items())


def tasks_text(tasks: Sequence[Mapping[str, Any]]) -> str:
    return table(
        tasks,
        [
            Column("ticket_id", "TICKET"),
            Column("handoff_id", "TASK"),
            "action",
            Column("data", format=_data_text, max_width=50),
            Column("order_id", "ORDER"),
            Column("opened_at", "OPENED", format=lambda at: shop_time(at, seconds=False)),
            Column("taken_by", "TAKEN BY"),
            Column("first_handler_id", "FIRST HANDLER"),
        ],
        empty="(no task waiting)",
    )


def tasks_command(app: typer.Typer, role: Role) -> None:
    """Add `tasks` to a role's commands: the handoffs waiting for `role`, oldest first."""

    @app.command("tasks")
    def tasks(actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
        waiting = read(ListTasks, actor, role=role)
        emit(waiting, as_json=as_json, text=lambda: tasks_text(waiting))

    tasks.__doc__ = f"Tasks handed to {role} and not done yet."
