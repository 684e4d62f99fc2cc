"""The workbench (千牛 for this shop): pages for agents, warehouse and finance staff and
supervisors, server-rendered (Jinja2) and kept live over server-sent events (`shared.web.live`).

It reads PostgreSQL through the one read model (`shared.tickets.read_model`) and changes
nothing itself: every action is the CLI's own command sent to the worker over AMQP
(`shared.web.gateway`), with the signed-in agent's session token, so every rule stays the
workers'. The session (agent id, token, CSRF token) lives in a signed HttpOnly SameSite=Lax
cookie that page scripts cannot read; every POST form carries the session's CSRF token.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from functools import wraps
from importlib import resources
from typing import Any

import aio_pika
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from services.catalogue import CATALOGUE
from services.finance.contracts import FinanceOperation
from services.warehouse.contracts import WarehouseOperation
from shared.agents.identity import SessionRefused, session_of
from shared.agents.roster import SHOP_TIMEZONE
from shared.cli.output import shop_time
from shared.clock import Clock
from shared.config import Settings
from shared.db import Pool, create_pool
from shared.flows.model import FlowBook
from shared.messaging import topology as messaging
from shared.ops.dlq.broker import DeadLetters
from shared.tickets import HANDOFF_ROLES
from shared.tickets.contracts import (
    ClaimArgs,
    CloseArgs,
    CommandReply,
    HandOffArgs,
    OperationCommand,
    ReassignArgs,
    RecordResultArgs,
    ReplyArgs,
    ResolveArgs,
    RevealTicket,
    StepArgs,
    TicketCommand,
)
from shared.tickets.read_model import (
    agent_profile,
    clocks_of,
    list_tickets,
    masked_view,
    open_tasks,
    supervisor_board,
    ticket_view,
    tracked_tickets,
)
from shared.tickets.roles import Role
from shared.web.forms import Filled, Form, fill, form_of, operation_forms
from shared.web.gateway import Gateway
from shared.web.live import HistoryFeed, events
from shared.web.words import refusal_text

SUPERVISOR = Role.SUPERVISOR.value

# The roles with an operations page, their command type, and the operations only a
# supervisor may run there.
OPERATIONS: dict[str, tuple[type[OperationCommand], frozenset[str]]] = {
    Role.WAREHOUSE.value: (WarehouseOperation, frozenset()),
    Role.FINANCE.value: (FinanceOperation, frozenset({"approve_payout"})),
}
OPERATION_FORMS = {role: operation_forms(t) for role, (t, _) in OPERATIONS.items()}


@dataclass(frozen=True)
class Person:
    """Who is signed in: from the session (id, token) and the roster (name, roles)."""

    id: str
    name: str
    roles: tuple[str, ...]
    token: str | None

    @property
    def supervisor(self) -> bool:
        return SUPERVISOR in self.roles

    def may_work_as(self, role: str) -> bool:
        return role in self.roles or self.supervisor


@dataclass
class Workbench:
    """What the pages share: settings, the pool, the live feed, the clock and the flows."""

    settings: Settings
    gateway: Gateway
    clock: Clock
    flows: FlowBook
    pool: Pool | None = None
    feed: HistoryFeed | None = None


def _when(at: Any, seconds: bool = False) -> str:
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return shop_time(at, seconds=seconds) if isinstance(at, datetime) or at is None else str(at)


def _left(seconds: float) -> str:
    sign, rest = ("-" if seconds < 0 else ""), round(abs(seconds))
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}h{minutes:02d}m" if hours else f"{sign}{minutes}m{secs:02d}s"


def _templates() -> Environment:
    folder = resources.files("shared.web") / "templates"
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["left"] = _left
    return env


TEMPLATES = _templates()

Handler = Callable[[Request, Person], Awaitable[Response]]


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = TEMPLATES.get_template(name).render(
        request=request, csrf=request.session.get("csrf", ""), **context
    )
    return HTMLResponse(body, status_code=status)


def bench_of(request: Request) -> Workbench:
    wb: Workbench = request.app.state.workbench
    return wb


def pool_of(request: Request) -> Pool:
    pool = bench_of(request).pool
    assert pool is not None, "the workbench is not started"
    return pool


async def person_of(request: Request) -> Person | None:
    """The signed-in agent, if the session's token is still live (not expired, not revoked:
    `ticketq agent revoke` or signing out elsewhere ends the web session too)."""
    token = request.session.get("token")
    if not token:
        return None
    async with pool_of(request).acquire() as conn:
        try:
            session = await session_of(conn, token, now_of(request))
        except SessionRefused:
            request.session.clear()
            return None
        profile = await agent_profile(conn, session.agent_id)
    if profile is None:
        return None
    return Person(session.agent_id, profile["name"], tuple(profile["roles"]), token)


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The page needs a signed-in agent (else: to the sign-in page); a POST needs the
    session's CSRF token in its form."""

    @wraps(handler)
    async def page(request: Request) -> Response:
        person = await person_of(request)
        if person is None:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if request.method == "POST":
            form = await request.form()
            if not _csrf_ok(request, str(form.get("csrf", ""))):
                return forbidden(request, person, "This form is stale or forged (CSRF check).")
        return await handler(request, person)

    return page


def _csrf_ok(request: Request, sent: str) -> bool:
    expected = request.session.get("csrf")
    return bool(expected) and secrets.compare_digest(str(expected), sent)


def forbidden(request: Request, person: Person | None, message: str) -> HTMLResponse:
    return render(request, "error.html", status=403, person=person, message=message)


def now_of(request: Request) -> datetime:
    return bench_of(request).clock.now()


# --------------------------------------------------------------------------------------------
# Signing in


async def login_page(request: Request) -> Response:
    request.session.setdefault("csrf", secrets.token_urlsafe(24))
    return render(request, "login.html", person=None, next=request.query_params.get("next", "/"))


async def login(request: Request) -> Response:
    form = await request.form()
    if not _csrf_ok(request, str(form.get("csrf", ""))):
        return render(request, "login.html", 403, person=None, error="Stale form: try again.")
    agent_id, password = str(form.get("agent_id", "")).strip(), str(form.get("password", ""))
    target = str(form.get("next", "/"))
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if not agent_id or not password:
        return render(request, "login.html", 400, person=None, error="Agent id and password.")
    answer = await bench_of(request).gateway.sign_in(agent_id, password)
    if not answer.accepted:
        message = f"Not signed in: {answer.message} ({answer.code})"
        return render(request, "login.html", 401, person=None, error=message, agent_id=agent_id)
    request.session.clear()  # a new session: a new CSRF token, nothing carried over
    request.session.update(
        agent=answer.agent_id,
        token=answer.token,
        expires=answer.expires_at.isoformat() if answer.expires_at else None,
        csrf=secrets.token_urlsafe(24),
    )
    return RedirectResponse(target, status_code=303)


@signed_in
async def logout(request: Request, person: Person) -> Response:
    await bench_of(request).gateway.sign_out(person.token)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@signed_in
async def home(request: Request, person: Person) -> Response:
    if person.supervisor:
        return RedirectResponse("/board", status_code=303)
    for role in OPERATIONS:
        if role in person.roles:
            return RedirectResponse(f"/roles/{role}", status_code=303)
    return RedirectResponse("/me", status_code=303)


# --------------------------------------------------------------------------------------------
# An agent's page


@signed_in
async def my_page(request: Request, person: Person) -> Response:
    now, feed = now_of(request), bench_of(request).feed
    assert feed is not None
    seq = feed.settled
    async with pool_of(request).acquire() as conn:
        owned = (await list_tickets(conn, owner=person.id, now=now)).rows
        waiting = await list_tickets(conn, waiting_for=person.id, now=now)
        queued = [t for t in waiting.rows if t["owner"]["agent"] is None]
        tracked = await tracked_tickets(conn, person.id)
        ids = [t["id"] for t in (*owned, *queued, *tracked)]
        clocks = await clocks_of(conn, ids, now)
    return render(
        request,
        "me.html",
        person=person,
        seq=seq,
        stream="/events",
        owned=owned,
        queued=queued,
        tracked=tracked,
        clocks=clocks,
        live_regions="#owned,#queued,#tracked",
    )


# --------------------------------------------------------------------------------------------
# The ticket page


def ticket_forms(view: Mapping[str, Any], person: Person) -> dict[str, Form]:
    """The actions on a ticket, each a form derived from its argument model; the choices
    (open handoffs, the flow's answers) from the ticket as it is now."""
    open_handoffs = [h["id"] for h in view["handoffs"] if h["result"] is None]
    answers = (view.get("flow") or {}).get("answers") or []
    forms = {
        "claim": form_of(ClaimArgs, title="claim"),
        "reply": form_of(ReplyArgs, exclude=["promise_by"], title="reply to the customer"),
        "hand_off": form_of(
            HandOffArgs,
            choices={"role": sorted(r.value for r in HANDOFF_ROLES)},
            title="hand off",
        ),
        "record_result": form_of(
            RecordResultArgs, choices={"handoff_id": open_handoffs}, title="record a result"
        ),
        "step": form_of(StepArgs, choices={"answer": answers}, title="flow step"),
        "resolve": form_of(ResolveArgs, title="resolve"),
        "close": form_of(CloseArgs, title="close"),
    }
    if not open_handoffs:
        del forms["record_result"]
    if not answers:
        del forms["step"]
    if person.supervisor:
        forms["reassign_first_handler"] = form_of(ReassignArgs, title="reassign first handler")
    return forms


async def _ticket(request: Request, ticket_id: str) -> dict[str, Any] | None:
    wb = bench_of(request)
    async with pool_of(request).acquire() as conn:
        return await ticket_view(conn, ticket_id, wb.flows, now=wb.clock.now())


@signed_in
async def ticket_page(request: Request, person: Person) -> Response:
    ticket_id = request.path_params["ticket_id"]
    feed = bench_of(request).feed
    assert feed is not None
    seq = feed.settled
    view = await _ticket(request, ticket_id)
    if view is None:
        return render(request, "error.html", 404, person=person, message=f"No ticket {ticket_id}.")
    return render(
        request,
        "ticket.html",
        person=person,
        seq=seq,
        stream=f"/events?ticket={ticket_id}",
        t=masked_view(view),
        forms=ticket_forms(view, person),
        filled={},
        live_regions="#head,#clocks,#flow,#handoffs,#timeline,#step-form,#result-form",
    )


@signed_in
async def ticket_action(request: Request, person: Person) -> Response:
    ticket_id, name = request.path_params["ticket_id"], request.path_params["action"]
    view = await _ticket(request, ticket_id)
    if view is None:
        return render(request, "error.html", 404, person=person, message=f"No ticket {ticket_id}.")
    forms = ticket_forms(view, person)
    if name not in forms:
        return forbidden(request, person, f"{name.replace('_', ' ')} is not open to you here.")
    form = forms[name]
    filled = fill(form, {k: str(v) for k, v in (await request.form()).items()})
    outcome = None
    if filled.args is not None:
        command = TicketCommand(ticket_id=ticket_id, actor_id=person.id, args=filled.args)
        reply = await bench_of(request).gateway.send(command, person.token)
        outcome = _outcome(reply, name, view)
        if reply.accepted:
            filled = Filled({})
    return render(
        request,
        "form.html",
        form=form,
        action=f"/tickets/{ticket_id}/act/{name}",
        filled=filled,
        outcome=outcome,
    )


def _outcome(reply: CommandReply, command: str, view: Mapping[str, Any] | None) -> dict[str, Any]:
    if reply.accepted:
        return {"accepted": True, "text": f"Done: {reply.message}", "data": reply.data}
    return {
        "accepted": False,
        "code": reply.code,
        "text": refusal_text(reply.code, reply.message, command, view),
    }


@signed_in
async def reveal(request: Request, person: Person) -> Response:
    """Supervisors only: the ticket with personal data, through `ticket.reveal`, which checks
    the role again and records the reveal before answering."""
    ticket_id = request.path_params["ticket_id"]
    if not person.supervisor:
        return forbidden(request, person, "Only a supervisor may reveal personal data.")
    command = RevealTicket(ticket_id=ticket_id, actor_id=person.id)
    reply = await bench_of(request).gateway.send(command, person.token)
    if not reply.accepted:
        outcome = _outcome(reply, "reveal", None)
        return render(request, "revealed.html", t=None, outcome=outcome)
    return render(request, "revealed.html", t=reply.data, outcome=None)


# --------------------------------------------------------------------------------------------
# Warehouse and finance


def _role_of(request: Request, person: Person) -> tuple[str, Response | None]:
    role = request.path_params["role"]
    if role not in OPERATIONS:
        return role, render(request, "error.html", 404, person=person, message="No such page.")
    if not person.may_work_as(role):
        return role, forbidden(
            request,
            person,
            f"This is {role}'s page: {person.name} ({person.id}) works as "
            f"{', '.join(person.roles)}.",
        )
    return role, None


@signed_in
async def role_page(request: Request, person: Person) -> Response:
    role, refused = _role_of(request, person)
    if refused is not None:
        return refused
    feed = bench_of(request).feed
    assert feed is not None
    seq = feed.settled
    async with pool_of(request).acquire() as conn:
        tasks = await open_tasks(conn, Role(role))
    _, supervisor_only = OPERATIONS[role]
    operations = [
        f
        for name, f in OPERATION_FORMS[role].items()
        if person.supervisor or name not in supervisor_only
    ]
    return render(
        request,
        "role.html",
        person=person,
        seq=seq,
        stream="/events",
        role=role,
        tasks=tasks,
        operations=operations,
        live_regions="#tasks",
    )


@signed_in
async def operation_page(request: Request, person: Person) -> Response:
    role, refused = _role_of(request, person)
    name = request.path_params["operation"]
    if refused is not None:
        if name in OPERATION_FORMS.get(role, {}):
            title = OPERATION_FORMS[role][name].title
            return forbidden(
                request,
                person,
                f"The {title} form is for {role} staff: {person.name} ({person.id}) works "
                f"as {', '.join(person.roles)}.",
            )
        return refused
    message_type, supervisor_only = OPERATIONS[role]
    if name not in OPERATION_FORMS[role]:
        return render(request, "error.html", 404, person=person, message="No such operation.")
    form = OPERATION_FORMS[role][name]
    if name in supervisor_only and not person.supervisor:
        return forbidden(request, person, f"Only a supervisor may {form.title}.")
    action = f"/roles/{role}/{name}"
    if request.method == "GET":
        values = {
            "ticket_id": request.query_params.get("ticket", ""),
            "handoff_id": request.query_params.get("handoff", ""),
        }
        return render(
            request,
            "operation.html",
            person=person,
            role=role,
            form=form,
            action=action,
            filled=Filled(values),
            outcome=None,
        )
    raw = {k: str(v) for k, v in (await request.form()).items()}
    ticket_id = raw.get("ticket_id", "").strip()
    filled = fill(form, raw)
    filled.values["ticket_id"] = ticket_id
    if not ticket_id:
        filled.errors["ticket_id"] = "required"
    outcome = None
    if filled.args is not None and not filled.errors:
        command = message_type.model_validate(
            {"ticket_id": ticket_id, "actor_id": person.id, "args": filled.args}
        )
        reply = await bench_of(request).gateway.send(command, person.token)
        outcome = _outcome(reply, name, None)
    return render(
        request,
        "operation_form.html",
        form=form,
        action=action,
        filled=filled,
        outcome=outcome,
    )


# --------------------------------------------------------------------------------------------
# Boards


@signed_in
async def board_page(request: Request, person: Person) -> Response:
    if not person.supervisor:
        return forbidden(request, person, "The board is the supervisors'.")
    wb, now = bench_of(request), now_of(request)
    assert wb.feed is not None
    seq = wb.feed.settled
    day_start = datetime.combine(now.astimezone(SHOP_TIMEZONE).date(), time(), SHOP_TIMEZONE)
    async with pool_of(request).acquire() as conn:
        board = await supervisor_board(
            conn,
            now=now,
            day_start=day_start,
            approval_threshold=Decimal(wb.settings.compensation_approval_threshold),
        )
    return render(
        request,
        "board.html",
        person=person,
        seq=seq,
        stream="/events",
        board=board,
        now=now,
        reassign=form_of(ReassignArgs, exclude=[]),
        live_regions="#queues,#today,#absent,#approvals",
    )


@signed_in
async def ops_page(request: Request, person: Person) -> Response:
    if not person.supervisor:
        return forbidden(request, person, "The ops board is the supervisors'.")
    settings = bench_of(request).settings
    queues: list[dict[str, Any]] = []
    error = None
    try:
        connection = await aio_pika.connect(settings.amqp_url, timeout=5)
        async with connection:
            dead = await DeadLetters(connection).counts()
            channel = await connection.channel()
            for name in CATALOGUE.queue_names:
                depth, consumers = await messaging.queue_stats(channel, name)
                dlq = messaging.dead_letter_queue(name)
                queues.append(
                    {"queue": name, "depth": depth, "consumers": consumers, "dlq": dead.get(dlq)}
                )
    except Exception as exc:  # the broker away (or not set up) is what this page must show
        error = f"cannot read the broker: {type(exc).__name__}: {exc}"
    return render(request, "ops.html", person=person, queues=queues, error=error)


# --------------------------------------------------------------------------------------------
# The live stream


async def stream(request: Request) -> Response:
    person = await person_of(request)
    if person is None:
        return Response("sign in first", status_code=401)
    feed = bench_of(request).feed
    assert feed is not None
    after = _number(request.query_params.get("after"))
    after = max(after, _number(request.headers.get("last-event-id")))
    ticket_id = request.query_params.get("ticket") or None
    return EventSourceResponse(
        events(feed, after=after, ticket_id=ticket_id),
        ping=15,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _number(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


# --------------------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    clock: Clock,
    flows: FlowBook,
    secret: str,
    gateway: Gateway | None = None,
    https_only: bool = False,
    feed_interval: float = 0.1,
    pool_size: int = 10,
) -> Starlette:
    """The workbench's ASGI app; `secret` signs the session cookie."""
    bench = Workbench(settings, gateway or Gateway(settings), clock, flows)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        bench.pool = await create_pool(settings, size=pool_size)
        bench.feed = HistoryFeed(bench.pool, interval=feed_interval)
        await bench.feed.start()
        try:
            yield
        finally:
            await bench.feed.stop()
            await bench.pool.close()

    static = resources.files("shared.web") / "static"
    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/me", my_page),
        Route("/tickets/{ticket_id}", ticket_page),
        Route("/tickets/{ticket_id}/act/{action}", ticket_action, methods=["POST"]),
        Route("/tickets/{ticket_id}/reveal", reveal, methods=["POST"]),
        Route("/roles/{role}", role_page),
        Route("/roles/{role}/{operation}", operation_page, methods=["GET", "POST"]),
        Route("/board", board_page),
        Route("/ops", ops_page),
        Route("/events", stream),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="ticketq_session",
            same_site="lax",
            https_only=https_only,
            max_age=12 * 3600,
        )
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.workbench = bench
    return app
