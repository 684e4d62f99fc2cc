"""The one read model of tickets: what the CLI, the web workbench and the report read.

Queries only (no writes), over the tickets' state; personal data is masked here, before any
view sees it, unless a caller that may reveal it asks otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from shared.agents.roster import agent_from_row
from shared.agents.store import shift_roster
from shared.calendar.maths import business_time_between
from shared.calendar.model import WEEKDAYS, Calendar
from shared.calendar.store import load_calendar
from shared.db import Connection
from shared.flows.model import FlowBook
from shared.flows.view import position_view
from shared.pii import mask, mask_detail, mask_text
from shared.tickets import Ticket
from shared.tickets.roles import Role

TICKET = TypeAdapter(Ticket)


class UnknownAgent(LookupError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"no agent {agent_id!r} in the roster")
        self.agent_id = agent_id


@dataclass(frozen=True)
class Page:
    """One page of a listing, and how many matched in all."""

    rows: list[dict[str, Any]]
    total: int
    offset: int


async def open_tasks(conn: Connection, role: Role) -> list[dict[str, Any]]:
    """Handoffs to `role` with no result yet, oldest first, from the tickets' state."""
    rows = await conn.fetch(
        """SELECT t.id AS ticket_id, t.order_id, h->>'id' AS handoff_id,
                  h->'task'->>'action' AS action, h->'task'->'data' AS data,
                  (h->>'opened_at')::timestamptz AS opened_at,
                  h->'opened_by'->>'id' AS opened_by, h->'taken_by'->>'id' AS taken_by,
                  t.first_handler_id
             FROM tickets t, jsonb_array_elements(t.state->'handoffs') h
            WHERE t.state IS NOT NULL AND t.status <> 'closed' AND h->>'role' = $1
              AND coalesce(jsonb_typeof(h->'result'), 'null') = 'null'
            ORDER BY (h->>'opened_at')::timestamptz, t.id""",
        role.value,
    )
    return [{**dict(r), "data": mask_detail(r["data"] or {})} for r in rows]


async def list_tickets(
    conn: Connection,
    *,
    role: str | None = None,
    owner: str | None = None,
    status: str | None = None,
    waiting_for: str | None = None,
    absent_first_handler: bool = False,
    due_within: timedelta | None = None,
    breached: bool = False,
    include_closed: bool = False,
    limit: int = 100,
    offset: int = 0,
    now: datetime,
) -> Page:
    """Tickets matching every filter given, newest first, `limit` from `offset`, and how many
    matched in all (see `ticketq tickets list` for the filters)."""
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
            raise UnknownAgent(waiting_for)
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
    if due_within is not None:  # a clock running out: a pending timer due by then
        where.append(
            f"""EXISTS (SELECT 1 FROM timers d WHERE d.ticket_id = t.id AND d.state = 'pending'
                          AND d.due_at <= {param(now + due_within)})"""
        )
    if breached:
        where.append("EXISTS (SELECT 1 FROM breaches b WHERE b.ticket_id = t.id)")
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
         ORDER BY t.opened_at DESC, t.id DESC"""
    total = None
    if not absent_first_handler:  # absence is decided below, row by row
        where_sql = "WHERE " + " AND ".join(where) if where else ""
        total = await conn.fetchval(f"SELECT count(*) FROM tickets t {where_sql}", *params)
        sql += f" LIMIT {param(limit)} OFFSET {param(offset)}"
    rows = await conn.fetch(sql, *params)
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
                absence = None if roster.on_shift(agent, now) else "off shift"
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
    if total is None:
        return Page(out[offset : offset + limit], len(out), offset)
    return Page(out, total, offset)


async def is_supervisor(conn: Connection, agent_id: str) -> bool:
    roles = await conn.fetchval("SELECT roles FROM agents WHERE id = $1", agent_id)
    return roles is not None and Role.SUPERVISOR.value in roles


async def running_clocks(conn: Connection, ticket_id: str, now: datetime) -> list[dict[str, Any]]:
    """The ticket's pending timers, soonest first: kind, clock, due time, and the time left on
    its clock at `now` (business clocks: the role's staffed time; negative: overdue)."""
    return (await clocks_of(conn, [ticket_id], now))[ticket_id]


_ROLES = {r.value for r in Role}


async def ticket_view(
    conn: Connection,
    ticket_id: str,
    flows: FlowBook | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """Everything about one ticket, unmasked: the caller masks (`masked_view`). With `flows`,
    its current step, the question and the allowed answers (`flow`); with `now`, its running
    clocks too (`running_clocks`)."""
    row = await conn.fetchrow(
        """SELECT t.*, o.name AS owner_name, f.name AS first_handler_name
             FROM tickets t
             LEFT JOIN agents o ON o.id = t.owner_agent_id
             LEFT JOIN agents f ON f.id = t.first_handler_id
            WHERE t.id = $1""",
        ticket_id,
    )
    if row is None:
        return None
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
    view = _view(dict(row), state, [dict(c) for c in contacts], [dict(h) for h in history])
    view["clocks"] = [] if now is None else await running_clocks(conn, ticket_id, now)
    if state is not None and state.flow is not None:
        view["flow"] = position_view(state.flow, flows.of(state.flow) if flows else None)
    return view


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
        "flow": None,
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


# --------------------------------------------------------------------------------------------
# The workbench's views (shared/web): who is signing in, what an agent tracks, the boards, and
# the history as a stream of numbered changes.


async def agent_profile(conn: Connection, agent_id: str) -> dict[str, Any] | None:
    """An agent's id, name, roles and presence, or None if not in the roster."""
    row = await conn.fetchrow("SELECT id, name, roles, online FROM agents WHERE id = $1", agent_id)
    return None if row is None else {**dict(row), "roles": list(row["roles"])}


async def tracked_tickets(conn: Connection, agent_id: str) -> list[dict[str, Any]]:
    """Tickets `agent_id` is first handler of while someone else (or a role's queue) holds
    them: each with its handoffs waiting and those whose results are back (§5.5)."""
    rows = await conn.fetch(
        """SELECT t.id, t.kind, t.status, t.version, t.subject, t.owner_role, t.owner_agent_id,
                  o.name AS owner_name, t.updated_at,
                  (SELECT count(*) FROM jsonb_array_elements(coalesce(t.state->'handoffs', '[]')) h
                    WHERE jsonb_typeof(coalesce(h->'result', 'null')) = 'null') AS waiting,
                  (SELECT count(*) FROM jsonb_array_elements(coalesce(t.state->'handoffs', '[]')) h
                    WHERE jsonb_typeof(coalesce(h->'result', 'null')) <> 'null') AS back
             FROM tickets t LEFT JOIN agents o ON o.id = t.owner_agent_id
            WHERE t.first_handler_id = $1 AND t.status <> 'closed'
              AND t.owner_agent_id IS DISTINCT FROM $1
            ORDER BY t.updated_at DESC, t.id""",
        agent_id,
    )
    return [{**dict(r), "subject": mask_text(r["subject"])} for r in rows]


async def clocks_of(
    conn: Connection, ticket_ids: Sequence[str], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """`running_clocks` of several tickets at once (a list page's SLA countdowns)."""
    rows = await conn.fetch(
        """SELECT ticket_id, kind, clock, due_at, payload->>'role' AS role FROM timers
            WHERE ticket_id = ANY($1::text[]) AND state = 'pending' ORDER BY due_at, kind""",
        list(ticket_ids),
    )
    calendar = await load_calendar(conn) if rows else None
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in ticket_ids}
    for r in rows:
        if r["clock"] == "business" and calendar is not None and r["role"] in _ROLES:
            left = business_time_between(calendar, Role(r["role"]), now, r["due_at"])
        else:
            left = r["due_at"] - now
        clock = {k: r[k] for k in ("kind", "clock", "due_at", "role")}
        out[r["ticket_id"]].append({**clock, "left_seconds": left.total_seconds()})
    return out


async def supervisor_board(
    conn: Connection, *, now: datetime, day_start: datetime, approval_threshold: Any
) -> dict[str, Any]:
    """The supervisor's board: per role the tickets queued (no agent yet), the oldest one's
    time and the agents online; breaches and escalations since `day_start`; compensation
    payouts above `approval_threshold` waiting for an approval."""
    queues = await conn.fetch(
        """SELECT owner_role AS role, count(*) AS depth, min(opened_at) AS oldest
             FROM tickets WHERE status <> 'closed' AND owner_agent_id IS NULL
            GROUP BY owner_role"""
    )
    online = await conn.fetch(
        """SELECT r AS role, count(*) FILTER (WHERE online) AS online, count(*) AS agents
             FROM agents, unnest(roles) r GROUP BY r"""
    )
    by_role: dict[str, dict[str, Any]] = {
        r.value: {"role": r.value, "depth": 0, "oldest": None, "online": 0, "agents": 0}
        for r in Role
    }
    for q in queues:
        by_role.setdefault(q["role"], {"role": q["role"], "online": 0, "agents": 0})
        by_role[q["role"]] |= {"depth": q["depth"], "oldest": q["oldest"]}
    for o in online:
        if o["role"] in by_role:
            by_role[o["role"]] |= {"online": o["online"], "agents": o["agents"]}
    breaches = await conn.fetchval("SELECT count(*) FROM breaches WHERE at >= $1", day_start)
    escalations = await conn.fetchval(
        "SELECT count(*) FROM ticket_history WHERE action = 'escalated' AND at >= $1", day_start
    ) + await conn.fetchval("SELECT count(*) FROM escalations WHERE at >= $1", day_start)
    approvals = await conn.fetch(
        """SELECT t.id AS ticket_id, h->>'id' AS handoff_id, h->'task'->>'action' AS action,
                  (h->'task'->'data'->>'amount') AS amount, t.first_handler_id,
                  (h->>'opened_at')::timestamptz AS opened_at
             FROM tickets t, jsonb_array_elements(t.state->'handoffs') h
            WHERE t.state IS NOT NULL AND t.status <> 'closed' AND h->>'role' = 'finance'
              AND coalesce(jsonb_typeof(h->'result'), 'null') = 'null'
              AND h->'task'->'data'->>'amount' ~ '^[0-9]+(\\.[0-9]+)?$'
              AND (h->'task'->'data'->>'amount')::numeric > $1
              AND NOT EXISTS (SELECT 1 FROM payout_approvals a WHERE a.handoff_id = h->>'id')
            ORDER BY opened_at""",
        approval_threshold,
    )
    absent = await list_tickets(conn, absent_first_handler=True, now=now)
    return {
        "roles": [by_role[k] for k in sorted(by_role)],
        "breaches_today": breaches,
        "escalations_today": escalations,
        "approvals": [dict(a) for a in approvals],
        "absent_first_handler": absent.rows,
    }


HISTORY_EVENT_COLUMNS = "id, ticket_id, at, actor_id, actor_name, action"


async def history_after(
    conn: Connection, after: int, *, ticket_id: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """History rows numbered above `after`, in number order (one ticket's, or all): what a
    live page missed. No details or reasons: those may hold personal data."""
    if ticket_id is None:
        rows = await conn.fetch(
            f"SELECT {HISTORY_EVENT_COLUMNS} FROM ticket_history WHERE id > $1 ORDER BY id "
            "LIMIT $2",
            after,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {HISTORY_EVENT_COLUMNS} FROM ticket_history "
            "WHERE ticket_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            ticket_id,
            after,
            limit,
        )
    return [dict(r) for r in rows]


async def last_history_id(conn: Connection) -> int:
    """The newest history row's number (0: none yet): where a page's live stream starts."""
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM ticket_history"))


# --------------------------------------------------------------------------------------------
# The agent CLI's other reads (answered by the workers: `shared.tickets.reads`): the roster,
# the calendar's day, stock and finance's ledger.


async def list_agents(
    conn: Connection, at: datetime, *, role: str | None = None
) -> list[dict[str, Any]]:
    """Every agent (of `role`): roles, shifts, presence, on shift at `at`, the unresolved
    tickets they own and the unfinished ones they are first handler of."""
    rows = await conn.fetch(
        """SELECT a.id, a.name, a.roles, a.shifts, a.online,
                  count(t.id) FILTER (WHERE t.owner_agent_id = a.id
                                        AND t.status <> 'resolved') AS open_tickets,
                  count(t.id) FILTER (WHERE t.first_handler_id = a.id) AS tracks
             FROM agents a
             LEFT JOIN tickets t ON t.status <> 'closed'
                                AND (t.owner_agent_id = a.id OR t.first_handler_id = a.id)
            WHERE $1::text IS NULL OR $1 = ANY(a.roles)
            GROUP BY a.id ORDER BY a.id""",
        role,
    )
    roster = await shift_roster(conn)
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "roles": list(r["roles"]),
            "shifts": list(r["shifts"]),
            "online": r["online"],
            "on_shift": roster.on_shift(agent_from_row(dict(r)), at),
            "open_tickets": r["open_tickets"],
            "tracks": r["tracks"],
        }
        for r in rows
    ]


def shop_day(calendar: Calendar, day: date, roles: Sequence[Role]) -> dict[str, Any]:
    """One shop day of `calendar`: its kind (holiday, 调休...) and each role's staffed hours."""
    shop = calendar.day(day)
    return {
        "date": day,
        "weekday": WEEKDAYS[day.weekday()],
        "timezone": calendar.timezone.key,
        "kind": shop.kind,
        "name": shop.name,
        "hours": {role.value: [str(span) for span in shop.spans(role)] for role in roles},
    }


async def calendar_day(
    conn: Connection, day: date | None, roles: Sequence[Role], now: datetime
) -> dict[str, Any]:
    """`shop_day` of the current calendar; `day` None: the shop's today at `now`."""
    calendar = await load_calendar(conn)
    return shop_day(calendar, day or now.astimezone(calendar.timezone).date(), roles)


async def stock_levels(conn: Connection, sku: str | None = None) -> list[dict[str, Any]]:
    """Stock levels (of `sku`), and the net movement tasks made to each."""
    rows = await conn.fetch(
        """SELECT s.sku, s.on_hand, coalesce(sum(m.delta), 0) AS moved, s.updated_at
             FROM stock s LEFT JOIN stock_movements m ON m.sku = s.sku
            WHERE s.sku = coalesce($1, s.sku)
            GROUP BY s.sku ORDER BY s.sku""",
        sku,
    )
    return [dict(r) for r in rows]


_LEDGER = (
    ("refunds", "refunds", "SELECT refund_id AS id, order_id, amount, reason AS note"),
    ("payouts", "payouts", "SELECT payout_id AS id, order_id, amount, reason AS note"),
    ("cashback", "cashback_register", "SELECT id::text, order_id, amount, note"),
    (
        "invoices",
        "invoices",
        "SELECT coalesce(einvoice_id, tracking_number) AS id, order_id, amount, title AS note",
    ),
)


async def finance_ledger(
    conn: Connection, ticket_id: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Refunds, payouts, cash-back entries and invoices recorded (of `ticket_id`), newest first,
    200 of each at most; notes masked (a reason may quote the customer)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, table, columns in _LEDGER:
        rows = await conn.fetch(
            f"{columns}, ticket_id, handoff_id, by_agent, at FROM {table} "
            "WHERE ticket_id = coalesce($1, ticket_id) ORDER BY at DESC LIMIT 200",
            ticket_id,
        )
        out[name] = [
            {**dict(r), "note": mask_text(r["note"]) if r["note"] else r["note"]} for r in rows
        ]
    return out
