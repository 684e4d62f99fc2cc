"""The agent CLI on tickets: reads from PostgreSQL, actions as commands to the role's worker.

Reads (`ticketq tickets list|show`) come straight from the system of record. Actions
(`ticketq claim|reply|handoff|result|resolve|close|escalate|reassign`) are `TicketCommand`s sent
over AMQP to the worker of the role that owns the ticket (`rpc.queue_for`); the agent sees at once
"accepted: ..." or "rejected (code): ..." (exit 0 or 1).

Customer personal data (SPEC §10) is masked in everything shown, unless a supervisor asks
`tickets show ID --reveal --as THEIR_ID`.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from pydantic import TypeAdapter, ValidationError

from shared.cli.agents import agent_from_row, clock, shift_roster
from shared.cli.output import (
    Column,
    Refused,
    cell,
    clean,
    emit,
    fields,
    run,
    shop_time,
    table,
)
from shared.cli.rpc import DbConnection, database, queue_for, send_command
from shared.config import get_settings
from shared.domain.roles import Role
from shared.domain.roster import SHOP_TIMEZONE
from shared.domain.ticket import HANDOFF_ROLES, EscalationCategory, Ticket, TicketStatus
from shared.models.base import Contract, new_message_id
from shared.models.commands import (
    ClaimArgs,
    CloseArgs,
    CommandArgs,
    CommandReply,
    EscalateArgs,
    HandOffArgs,
    ReassignArgs,
    RecordResultArgs,
    ReplyArgs,
    ResolveArgs,
    TicketCommand,
)
from shared.pii import mask, mask_text

tickets_app = typer.Typer(help="Read tickets: list and show.", no_args_is_help=True)

C = TypeVar("C", bound=Contract)

TICKET = TypeAdapter(Ticket)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]
TicketId = Annotated[str, typer.Argument(metavar="ID", help="The ticket id")]

# --------------------------------------------------------------------------------------------
# Personal data


# Keys under which ticket data holds an agent ({"id", "name"}): their names are not customer data.
_AGENT_KEYS = frozenset(
    {"agent", "by", "opened_by", "taken_by", "responsible", "first_handler", "from", "to"}
)


def mask_detail(value: Any) -> Any:
    """`shared.pii.mask` for structures that also name agents: agent references stay readable."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _AGENT_KEYS and _is_agent_ref(item):
                out[key] = dict(item)
            elif isinstance(item, Mapping | list | tuple):
                out[key] = mask_detail(item)
            else:
                out[key] = mask({key: item})[key]
        return out
    if isinstance(value, list | tuple):
        return [mask_detail(v) for v in value]
    return mask(value)


def _is_agent_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"id", "name"}


# --------------------------------------------------------------------------------------------
# tickets list


def _owner_text(role: str, agent_id: str | None, name: str | None) -> str:
    if agent_id is None:
        return f"{role} (queue)"
    return f"{role} {name or '?'} ({agent_id})"


async def list_tickets(
    conn: DbConnection,
    *,
    role: str | None = None,
    owner: str | None = None,
    status: str | None = None,
    waiting_for: str | None = None,
    absent_first_handler: bool = False,
    include_closed: bool = False,
    limit: int = 100,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Tickets matching every filter given, oldest first (see `tickets_list` for the filters)."""
    where: list[str] = []
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if role is not None:
        where.append(f"t.owner_role = {param(role)}")
    if owner is not None:
        where.append(f"t.owner_agent_id = {param(owner)}")
    if status is not None:
        where.append(f"t.status = {param(status)}")
    elif not include_closed:
        where.append("t.status <> 'closed'")
    if waiting_for is not None:
        roles = await conn.fetchval("SELECT roles FROM agents WHERE id = $1", waiting_for)
        if roles is None:
            raise Refused(f"no agent {waiting_for!r} in the roster", code="unknown_agent")
        me, mine = param(waiting_for), param(list(roles))
        where.append(
            f"""t.status <> 'closed' AND (
                  t.owner_agent_id = {me}
               OR (t.owner_agent_id IS NULL AND t.owner_role = ANY({mine}::text[]))
               OR EXISTS (
                    SELECT 1 FROM jsonb_array_elements(coalesce(t.state->'handoffs', '[]')) h
                     WHERE jsonb_typeof(coalesce(h->'result', 'null')) = 'null'
                       AND jsonb_typeof(coalesce(h->'taken_by', 'null')) = 'null'
                       AND h->>'role' = ANY({mine}::text[])))"""
        )
    if absent_first_handler:
        where.append(
            "t.status <> 'closed' AND t.first_handler_id IS NOT NULL"
            " AND t.owner_agent_id = t.first_handler_id"
        )
    sql = f"""
        SELECT t.id, t.kind, t.status, t.priority, t.channel, t.version, t.opened_at,
               t.updated_at, t.subject, t.customer->>'nick' AS customer,
               t.owner_role, t.owner_agent_id,
               coalesce(t.state->'owner'->'agent'->>'name', o.name) AS owner_name,
               t.first_handler_id,
               coalesce(t.state->'first_handler'->>'name', f.name) AS first_handler_name,
               f.id IS NOT NULL AS first_handler_known, f.online AS first_handler_online,
               f.roles AS first_handler_roles, f.shifts AS first_handler_shifts,
               (SELECT count(*) FROM jsonb_array_elements(coalesce(t.state->'handoffs', '[]')) h
                 WHERE jsonb_typeof(coalesce(h->'result', 'null')) = 'null') AS open_handoffs
          FROM tickets t
          LEFT JOIN agents o ON o.id = t.owner_agent_id
          LEFT JOIN agents f ON f.id = t.first_handler_id
         {"WHERE " + " AND ".join(where) if where else ""}
         ORDER BY t.opened_at, t.id"""
    if not absent_first_handler:
        sql += f" LIMIT {param(limit)}"
    rows = await conn.fetch(sql, *params)
    at = now or clock().now()
    roster = await shift_roster(conn)
    out = []
    for r in rows:
        absence = None
        if r["first_handler_id"] is not None:
            if not r["first_handler_known"]:
                absence = "not in roster"
            elif not r["first_handler_online"]:
                absence = "offline"
            else:
                agent = agent_from_row(
                    {
                        "id": r["first_handler_id"],
                        "name": r["first_handler_name"] or "",
                        "roles": r["first_handler_roles"],
                        "shifts": r["first_handler_shifts"],
                        "online": True,
                    }
                )
                absence = None if roster.on_shift(agent, at) else "off shift"
        if absent_first_handler and absence is None:
            continue
        out.append(
            {
                "id": r["id"],
                "kind": r["kind"],
                "status": r["status"],
                "priority": r["priority"],
                "channel": r["channel"],
                "version": r["version"],
                "owner": {
                    "role": r["owner_role"],
                    "agent": None
                    if r["owner_agent_id"] is None
                    else {"id": r["owner_agent_id"], "name": r["owner_name"]},
                },
                "first_handler": None
                if r["first_handler_id"] is None
                else {
                    "id": r["first_handler_id"],
                    "name": r["first_handler_name"],
                    "absent": absence,
                },
                "open_handoffs": r["open_handoffs"],
                "customer": r["customer"],
                "subject": mask_text(r["subject"]),
                "opened_at": r["opened_at"],
                "updated_at": r["updated_at"],
            }
        )
    return out[:limit]


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
    include_closed: Annotated[bool, typer.Option("--all", help="Include closed tickets")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List tickets, oldest first. Filters combine (all must hold)."""

    async def go() -> list[dict[str, Any]]:
        async with database(get_settings()) as conn:
            return await list_tickets(
                conn,
                role=role.value if role else None,
                owner=owner,
                status=status.value if status else None,
                waiting_for=waiting_for,
                absent_first_handler=absent_first_handler,
                include_closed=include_closed,
                limit=limit,
            )

    tickets = run(go())
    emit(tickets, as_json=as_json, text=lambda: _list_text(tickets, absent_first_handler))


# --------------------------------------------------------------------------------------------
# tickets show


async def is_supervisor(conn: DbConnection, agent_id: str) -> bool:
    roles = await conn.fetchval("SELECT roles FROM agents WHERE id = $1", agent_id)
    return roles is not None and Role.SUPERVISOR.value in roles


async def load_ticket(conn: DbConnection, ticket_id: str) -> dict[str, Any]:
    """Everything about one ticket, unmasked: the caller masks (`masked_view`)."""
    row = await conn.fetchrow(
        """SELECT t.*, o.name AS owner_name, f.name AS first_handler_name
             FROM tickets t
             LEFT JOIN agents o ON o.id = t.owner_agent_id
             LEFT JOIN agents f ON f.id = t.first_handler_id
            WHERE t.id = $1""",
        ticket_id,
    )
    if row is None:
        raise Refused(f"no ticket {ticket_id!r}", code="unknown_ticket")
    contacts = await conn.fetch(
        """SELECT source, external_id, is_follow_up, channel, subject, body, message_id,
                  occurred_at, received_at
             FROM ticket_contacts WHERE ticket_id = $1 ORDER BY occurred_at, received_at""",
        ticket_id,
    )
    history = await conn.fetch(
        """SELECT at, actor_id, actor_name, action, reason, detail, message_id
             FROM ticket_history WHERE ticket_id = $1 ORDER BY id""",
        ticket_id,
    )
    state = TICKET.validate_python(row["state"]) if row["state"] is not None else None
    return _view(dict(row), state, [dict(c) for c in contacts], [dict(h) for h in history])


def _ref(agent: Any) -> dict[str, str] | None:
    return None if agent is None else {"id": agent.id, "name": agent.name}


def _view(
    row: Mapping[str, Any],
    state: Ticket | None,
    contacts: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    owner: dict[str, Any]
    if state is not None:
        owner = {"role": state.owner.role.value, "agent": _ref(state.owner.agent)}
        fh = _ref(state.first_handler)
        fh_role = state.first_handler_role.value
    else:  # nobody touched it since intake: queued for its role
        agent = row["owner_agent_id"]
        owner = {
            "role": row["owner_role"],
            "agent": None if agent is None else {"id": agent, "name": row["owner_name"]},
        }
        fh = (
            None
            if row["first_handler_id"] is None
            else {"id": row["first_handler_id"], "name": row["first_handler_name"]}
        )
        fh_role = row["first_handler_role"] or row["owner_role"]
    tracking = fh is not None and (owner["agent"] is None or owner["agent"]["id"] != fh["id"])
    handoffs = []
    for h in state.handoffs if state else ():
        result = h.result
        handoffs.append(
            {
                "id": h.id,
                "role": h.role.value,
                "action": h.task.action,
                "data": dict(h.task.data),
                "opened_at": h.opened_at,
                "opened_by": _ref(h.opened_by),
                "taken_by": _ref(h.taken_by),
                "state": result.outcome
                if result
                else ("taken" if h.taken_by else "waiting for " + h.role.value),
                "result": None
                if result is None
                else {
                    "outcome": result.outcome,
                    "data": dict(result.data),
                    "at": result.at,
                    "by": _ref(result.by),
                },
            }
        )
    escalation = None
    if state is not None and state.escalation is not None:
        e = state.escalation
        escalation = {
            "handoff_id": e.handoff_id,
            "category": e.category.value,
            "customer_info": dict(e.customer_info),
            "problem": e.problem,
            "actions_taken": e.actions_taken,
            "customer_demand": e.customer_demand,
            "responsible": _ref(e.responsible),
            "deadline": e.deadline,
            "opened_at": e.opened_at,
            "opened_by": _ref(e.opened_by),
        }
    return {
        "id": row["id"],
        "kind": row["kind"],
        "status": row["status"],
        "version": row["version"],
        "channel": row["channel"],
        "priority": row["priority"],
        "source": row["source"],
        "external_id": row["external_id"],
        "opened_at": row["opened_at"],
        "updated_at": row["updated_at"],
        "subject": row["subject"],
        "body": row["body"],
        "customer": row["customer"],
        "order": row["order_data"],
        "attachments": row["attachments"],
        "owner": owner,
        "first_handler": None if fh is None else {**fh, "role": fh_role, "tracking": tracking},
        "first_response_at": state.first_response_at if state else None,
        "resolution": state.resolution if state else None,
        "resolved_at": state.resolved_at if state else None,
        "closed_at": state.closed_at if state else None,
        "handoffs": handoffs,
        "escalation": escalation,
        "contacts": [dict(c) for c in contacts],
        "history": [dict(h) for h in history],
    }


def masked_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """The ticket with customer data masked: everything the customer or agents wrote about
    them (texts, task and result data, history details); agents' names stay."""
    out = dict(view)
    for key in ("subject", "body", "resolution"):
        out[key] = mask_text(view[key]) if view[key] is not None else None
    for key in ("customer", "order", "attachments"):
        out[key] = mask(view[key])
    out["handoffs"] = [mask_detail(h) for h in view["handoffs"]]
    out["escalation"] = mask_detail(view["escalation"]) if view["escalation"] else None
    out["contacts"] = [
        {**c, "subject": mask_text(c["subject"]), "body": mask_text(c["body"])}
        for c in view["contacts"]
    ]
    out["history"] = [
        {
            **h,
            "reason": mask_text(h["reason"]) if h["reason"] else h["reason"],
            "detail": mask_detail(h["detail"]),
        }
        for h in view["history"]
    ]
    return out


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


@tickets_app.command("show")
def tickets_show(
    ticket_id: TicketId,
    reveal: Annotated[
        bool,
        typer.Option("--reveal", help="Show personal data unmasked (supervisors only, with --as)"),
    ] = False,
    actor: Annotated[
        str | None,
        typer.Option("--as", metavar="AGENT", envvar="TICKETQ_AGENT", help="Who is asking"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One ticket: owner, first handler, handoffs, contacts and its whole history."""

    async def go() -> dict[str, Any]:
        async with database(get_settings()) as conn:
            if reveal:
                if actor is None:
                    raise Refused("--reveal needs --as AGENT_ID (a supervisor)")
                if not await is_supervisor(conn, actor):
                    raise Refused(
                        f"--reveal is for supervisors only; {actor!r} has no supervisor role "
                        "in the roster (personal data stays masked)"
                    )
            view = await load_ticket(conn, ticket_id)
            if reveal:  # recorded before anything is shown
                await conn.execute(
                    "INSERT INTO pii_reveals (agent_id, ticket_id) VALUES ($1, $2)",
                    actor,
                    ticket_id,
                )
            return view

    view = run(go())
    shown = {**view, "revealed": True} if reveal else {**masked_view(view), "revealed": False}
    emit(shown, as_json=as_json, text=lambda: show_text(shown))


# --------------------------------------------------------------------------------------------
# Actions: commands to the workers


# The roles work can be handed to (§5.4), as the choices of `handoff --to`.
HandoffRole = StrEnum(  # type: ignore[misc]
    "HandoffRole", {r.name: r.value for r in sorted(HANDOFF_ROLES)}
)

ActorOpt = Annotated[
    str,
    typer.Option(
        "--as", metavar="AGENT", envvar="TICKETQ_AGENT", help="Your agent id", show_default=False
    ),
]
VersionOpt = Annotated[
    int | None,
    typer.Option(
        "--version",
        min=1,
        metavar="N",
        help="The version you saw: the command is rejected if the ticket changed since",
    ),
]
CommandIdOpt = Annotated[
    str | None,
    typer.Option(
        "--command-id",
        metavar="ID",
        help="Re-send an earlier command (same id: never applied twice, same answer)",
    ),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the answer")
]
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


_RELATIVE = re.compile(r"^\+(\d+)([mhd])$")


def parse_deadline(text: str, now: datetime) -> datetime:
    """ISO 8601 (shop local time when no offset is given) or `+30m`, `+2h`, `+1d`."""
    if match := _RELATIVE.match(text.strip()):
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return now + timedelta(**{unit: int(match[1])})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO time like 2026-11-24T18:00 or +2h, got {text!r}",
            param_hint="--deadline",
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=SHOP_TIMEZONE)
    if at <= now:
        raise typer.BadParameter(f"{shop_time(at)} is not in the future", param_hint="--deadline")
    return at


def build(factory: Callable[..., C], **values: Any) -> C:
    """Command arguments from the options; invalid values are a usage error (exit 2).

    An option not given (None) is left to the model's default."""
    values = {name: value for name, value in values.items() if value is not None}
    for name, value in values.items():
        if isinstance(value, str) and not value.strip():
            raise typer.BadParameter(f"{name} must not be blank")
    try:
        return factory(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise typer.BadParameter(problems) from None


def _reply_text(data: Mapping[str, Any]) -> str:
    message = clean(data["message"])
    if not data["accepted"]:
        return f"rejected ({data['code'] or 'rejected'}): {message}"
    extra = []
    if data.get("version") is not None:
        extra.append(f"version {data['version']}")
    if data.get("owner") and clean(data["owner"]) not in message:
        extra.append(f"owner {clean(data['owner'])}")
    return f"accepted: {message}" + (f" ({', '.join(extra)})" if extra else "")


def send(
    ticket_id: str,
    actor: str,
    args: CommandArgs,
    *,
    version: int | None,
    command_id: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Send one command to the worker of the ticket's role, print its answer, exit 0 or 1."""
    command = build(
        TicketCommand,
        ticket_id=ticket_id,
        actor_id=actor,
        expected_version=version,
        args=args,
    )
    message_id = command_id or new_message_id()
    settings = get_settings()

    async def go() -> tuple[str | None, CommandReply]:
        async with database(settings) as conn:
            try:
                queue = await queue_for(conn, ticket_id)
            except Refused as exc:
                if exc.code is None:
                    raise
                return None, CommandReply(
                    ticket_id=ticket_id, accepted=False, code=exc.code, message=exc.message
                )
        reply = await send_command(settings, queue, command, timeout=timeout, message_id=message_id)
        return queue, reply

    queue, reply = run(go())
    data = {"command_id": message_id, "queue": queue, **reply.model_dump(mode="json")}
    emit(data, as_json=as_json, text=lambda: _reply_text(data))
    if not reply.accepted:
        raise typer.Exit(1)


# The options every action shares, added to each by `ticket_action`.
_SHARED_OPTIONS = (
    inspect.Parameter("actor", inspect.Parameter.KEYWORD_ONLY, annotation=ActorOpt),
    inspect.Parameter(
        "version", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=VersionOpt
    ),
    inspect.Parameter(
        "command_id", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=CommandIdOpt
    ),
    inspect.Parameter(
        "timeout", inspect.Parameter.KEYWORD_ONLY, default=10.0, annotation=TimeoutOpt
    ),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
)
_TICKET = inspect.Parameter(
    "ticket_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=TicketId
)

MakeArgs = Callable[..., CommandArgs]


def ticket_action(app: typer.Typer, name: str) -> Callable[[MakeArgs], MakeArgs]:
    """Register `ticketq NAME ID [its options] --as AGENT [--version --command-id --timeout
    --json]`: the decorated function turns its own options into the command's arguments; the
    ticket id, the shared options and the sending are added here, once for every action."""

    def register(make_args: MakeArgs) -> MakeArgs:
        own = inspect.signature(make_args, eval_str=True)

        def command(ticket_id: str, **options: Any) -> None:
            shared = {p.name: options.pop(p.name) for p in _SHARED_OPTIONS}
            send(ticket_id, shared.pop("actor"), make_args(**options), **shared)

        command.__signature__ = own.replace(  # type: ignore[attr-defined]
            parameters=[_TICKET, *own.parameters.values(), *_SHARED_OPTIONS],
            return_annotation=None,
        )
        command.__doc__ = make_args.__doc__
        app.command(name)(command)
        return make_args

    return register


def register_actions(app: typer.Typer) -> None:
    """Add the action commands to `app` (top level: `ticketq claim ID ...`)."""

    @ticket_action(app, "claim")
    def claim() -> CommandArgs:
        """Take a queued ticket (you become its first handler) or a handoff to your role."""
        return ClaimArgs()

    @ticket_action(app, "reply")
    def reply(
        text: Annotated[str, typer.Argument(help="What you tell the customer")],
    ) -> CommandArgs:
        """Answer the customer (the first answer is the ticket's first response)."""
        return build(ReplyArgs, text=text)

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

    @ticket_action(app, "reassign")
    def reassign(
        to: Annotated[str, typer.Option("--to", metavar="AGENT", help="The new first handler")],
        reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history)")],
    ) -> CommandArgs:
        """Supervisor: give the ticket a new first handler, with the reason (§5.7)."""
        return build(ReassignArgs, new_first_handler_id=to, reason=reason)
