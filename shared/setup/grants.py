"""Least privilege as data: what each principal (a worker, the agents' CLI, the web workbench,
the operators, the daily report) may do on the broker and in the database (SPEC §10: each
service its own credentials and only the permissions it needs). `ticketq setup` applies it;
tests hold it to what the code touches.

Broker: a principal reads (consumes) the queues the catalogue gives it, publishes on exchange
`ticketq` (a topic exchange, so RabbitMQ checks the routing key) only to the queues of the
message types it produces, dead-letters (on `ticketq.dlx`, a topic exchange too) to its own
queues' DLQs only (workers), answers requests through exchange `ticketq.replies` (request/reply
workers), and asks with server-named reply queues bound there (clients); the operators' DLQ
tool reads every DLQ and replays to their queues; the daily report only counts what the DLQs
hold. Nobody but the admin writes to the default exchange.

Database: a table → privileges map per principal, in letters (S select, I insert, U update,
D delete). Append-only tables (history, ledgers, records of what happened) are granted to
nobody for UPDATE or DELETE; a table missing here is granted to nobody (tests list the schema's
tables and fail on one not listed in `TABLES`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from services.aftersales.contracts import PlatformInterventionOpened, PlatformRuling
from services.catalogue import CATALOGUE, DESKS
from services.finance.contracts import FinanceOperation
from services.intake.contracts import (
    OrderClosed,
    OrderPaid,
    OrderShipped,
    OrderSigned,
    SubmitTicket,
)
from services.warehouse.contracts import AdjustStock, WarehouseOperation
from shared.agents.contracts import LoadRoster, SetPresence, SignIn, SignOut
from shared.messaging.envelope import Contract
from shared.messaging.topology import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    REPLY_EXCHANGE,
    dead_letter_queue,
)
from shared.ops.dlq.broker import LOCK_QUEUE
from shared.tickets.contracts import (
    FollowUpAttached,
    HandoffRequested,
    RevealTicket,
    TicketCommand,
    TicketReturned,
    TicketRouted,
)
from shared.tickets.read_requests import (
    ListAgents,
    ListTasks,
    ListTickets,
    ShowCalendarDay,
    ShowLedger,
    ShowStock,
    ShowTicket,
)

MIGRATOR = "migrator"  # owns the schema: runs the migrations and grants the rest

PRIVILEGES = {"S": "SELECT", "I": "INSERT", "U": "UPDATE", "D": "DELETE"}

# Rows that record what happened: nobody may change or remove one (triggers refuse it too).
APPEND_ONLY = frozenset(
    {
        "ticket_history",
        "pii_reveals",
        "breaches",
        "escalations",
        "refunds",
        "payouts",
        "cashback_register",
        "invoices",
        "stock_movements",
        "shipments",
    }
)
LEDGERS = {
    "finance": (
        "order_payments",
        "refunds",
        "payouts",
        "payout_approvals",
        "cashback_register",
        "invoices",
    ),
    "warehouse": ("stock", "stock_movements", "shipments", "returns", "interceptions"),
}

# --- tables, by what a piece of code does --------------------------------------------------

RUNTIME = {  # inbox, handler, outbox and stored replies in one transaction; the relay
    "inbox": "SID",  # D: the relay forgets message ids past their retention
    "outbox": "SIUD",
    "outbox_set_aside": "I",
    "replies": "SI",
}
TICKETS = {  # moving a ticket: the aggregate's store, its clocks and timers
    "tickets": "SIU",
    "ticket_history": "SI",
    "agent_load": "SIU",  # kept by a trigger on tickets, which runs as the writer
    "timers": "SIU",
    "first_responses": "SIU",
    "agents": "S",
    "roster_shifts": "S",
    "calendar_versions": "S",
    "orders": "S",
}
SIGNED = {"agent_sessions": "S"}  # a worker of agents' commands checks their sessions
DESK = {  # a desk: assignment, the roster, reveals, the clocks' breaches and escalations
    **TICKETS,
    # sign-in (shared.agents.identity): passwords are set by operators (admin); a desk checks
    # (and rehashes) them, opens and revokes sessions, counts failures
    "agent_credentials": "SU",
    "agent_sessions": "SIU",
    "sign_in_failures": "SID",
    "ticket_contacts": "S",
    "agents": "SIUD",  # the roster is loaded whole: agents no longer on it are removed
    "roster_shifts": "SID",
    "assignment_cursor": "SIU",
    "pii_reveals": "SI",
    "breaches": "SI",
    "escalations": "SI",
}
READ_MODEL = {  # shared/tickets/read_model.py: the workbench's views
    "tickets": "S",  # its `customer` column holds personal data, masked by the read model
    "ticket_contacts": "S",
    "ticket_history": "S",
    "agents": "S",
    "roster_shifts": "S",
    "breaches": "S",
    "timers": "S",
}
REPORT = {  # shared/report: the daily figures, kept
    "tickets": "S",
    "ticket_history": "S",
    "breaches": "S",
    "escalations": "S",
    "first_responses": "S",
    "refunds": "S",
    "payouts": "S",
    "daily_reports": "SIU",  # producing a day's report again replaces it
}


def _merge(*grants: Mapping[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for grant in grants:
        for table, letters in grant.items():
            merged[table] = "".join(p for p in PRIVILEGES if p in merged.get(table, "") + letters)
    return merged


TABLES: dict[str, dict[str, str]] = {
    "intake": _merge(RUNTIME, TICKETS, {"ticket_contacts": "SI", "orders": "SIU"}),
    "presale": _merge(RUNTIME, DESK, REPORT),  # the presale desk makes the daily report
    "aftersales": _merge(RUNTIME, DESK, {"platform_interventions": "SIU"}),
    "warehouse": _merge(
        RUNTIME,
        TICKETS,
        SIGNED,
        {
            "stock": "SIU",
            "stock_movements": "SI",
            "shipments": "SI",
            "returns": "SIU",
            "interceptions": "SIU",
        },
    ),
    "finance": _merge(
        RUNTIME,
        TICKETS,
        SIGNED,
        {
            "order_payments": "SIU",  # the refunded total, moved by a trigger on refunds
            "refunds": "SI",
            "payouts": "SI",
            "payout_approvals": "SIU",
            "cashback_register": "SI",
            "invoices": "SI",
        },
    ),
    # Operators: the DLQ tool's record of what it replayed or discarded; agents' passwords and
    # sessions (`agent password`, `agent revoke`); the shop's calendar (`calendar load`).
    "ops": {
        "dlq_audit": "SIU",
        "agents": "S",
        "agent_credentials": "SIU",
        "agent_sessions": "SU",
        "roster_shifts": "S",  # a calendar may name the roster's shifts
        "calendar_versions": "SI",
    },
    # The daily report run by hand (`ticketq report daily|list|schedule`): its figures, the
    # reports kept, and the `report_day` timer (the shop calendar says when a day ends).
    "report": _merge(REPORT, {"timers": "SIU", "calendar_versions": "S"}),
    # The workbench: the read model, the sessions it checks on every page, and the
    # supervisor's board (escalations, approvals on record); business clocks' calendar.
    "web": _merge(
        READ_MODEL,
        SIGNED,
        {"escalations": "S", "payout_approvals": "S", "calendar_versions": "S"},
    ),
}
SEQUENCES = {"ticket_number": ("intake",)}  # nextval; a table's own id sequence comes with I

# The tables no principal is granted: the migrator's own.
UNGRANTED = frozenset({"schema_migrations"})

# --- the broker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerGrant:
    produces: tuple[type[Contract], ...] = ()  # published on `ticketq` to their queues
    worker: bool = False  # consumes its catalogue queues, dead-letters to their DLQs
    answers: bool = False  # publishes answers to `reply_to` queues (via `ticketq.replies`)
    asks: bool = False  # request/reply client: its own reply queues, bound to `ticketq.replies`
    dead_letters: bool = False  # the DLQ tool: reads every DLQ, replays to their queues


COMMANDS = (TicketCommand, RevealTicket, LoadRoster, SetPresence, SignIn, SignOut)
OPERATIONS = (WarehouseOperation, AdjustStock, FinanceOperation)
# The agents' CLI's reads: answered by the workers, so it needs no database (issue #12).
READS = (ListTickets, ShowTicket, ListTasks, ListAgents, ShowCalendarDay, ShowStock, ShowLedger)
MOVES = (HandoffRequested, TicketReturned)  # what a ticket's decision sends (tickets.messages)

BROKER: dict[str, BrokerGrant] = {
    "intake": BrokerGrant(produces=(TicketRouted, FollowUpAttached), worker=True),
    **{desk: BrokerGrant(produces=MOVES, worker=True, answers=True) for desk in DESKS},
    "warehouse": BrokerGrant(produces=MOVES, worker=True, answers=True),
    "finance": BrokerGrant(produces=MOVES, worker=True, answers=True),
    "cli": BrokerGrant(produces=COMMANDS + OPERATIONS + READS, asks=True),
    "web": BrokerGrant(produces=COMMANDS + OPERATIONS, asks=True),
    # Operators' DLQ tool (`ticketq dlq`): its lock queue, every DLQ, replays.
    "ops": BrokerGrant(dead_letters=True),
    # The daily report: the DLQs' depths, by passive declares, which need no permission.
    "report": BrokerGrant(),
    # The shop's upstream systems (IM gateway, order centre, the platform): customer contacts,
    # order events, the platform's interventions.
    "upstream": BrokerGrant(
        produces=(
            SubmitTicket,
            OrderPaid,
            OrderShipped,
            OrderSigned,
            OrderClosed,
            PlatformInterventionOpened,
            PlatformRuling,
        )
    ),
}

PRINCIPALS = tuple(dict.fromkeys([*BROKER, *TABLES]))

# Exclusive reply queues: server-named (rpc.request's `declare_queue("")`) or named by aio-pika
# (`declare_queue()`), as the runtime's `reply_to` check admits them.
REPLY_QUEUES = r"amq\.gen-.*|amq_[0-9a-f]+"


@dataclass(frozen=True)
class Permissions:
    """A user's permissions in a vhost: three regexes, and the routing keys it may publish with
    on `ticketq` and on `ticketq.dlx` (topic permissions: both are topic exchanges)."""

    configure: str
    write: str
    read: str
    topic_write: str
    dead_letter_write: str  # a worker dead-letters to its own queues' DLQs only


def _any_of(names: list[str]) -> str:
    """A regex matching exactly these names (RabbitMQ's are unanchored: anchor them)."""
    return "^(" + "|".join(names) + ")$" if names else "^$"


def routing_keys(name: str) -> tuple[str, ...]:
    grant = BROKER[name]
    if grant.dead_letters:  # a replay goes back to the queue it was dead-lettered from
        return tuple(CATALOGUE.queue_names)
    return tuple(dict.fromkeys(q for model in grant.produces for q in CATALOGUE.of(model).queues))


def permissions(name: str) -> Permissions:
    grant = BROKER[name]
    queues = CATALOGUE.queues_of(name) if grant.worker else ()
    configure, write, read = [], [], []
    if grant.produces or grant.dead_letters:
        write.append(re.escape(EXCHANGE))
    if grant.worker:
        write.append(re.escape(DEAD_LETTER_EXCHANGE))
        read += [re.escape(q) for q in queues]
    if grant.answers:
        write.append(re.escape(REPLY_EXCHANGE))
    if grant.asks:
        configure.append(REPLY_QUEUES)  # declare, and delete when done
        write.append(REPLY_QUEUES)  # bind (write on the queue, read on the exchange)
        read += [REPLY_QUEUES, re.escape(REPLY_EXCHANGE)]
    if grant.dead_letters:
        configure.append(re.escape(LOCK_QUEUE))  # one `ticketq dlq` command at a time
        read += [re.escape(dead_letter_queue(q)) for q in CATALOGUE.queue_names]
    return Permissions(
        configure=_any_of(configure),
        write=_any_of(write),
        read=_any_of(read),
        topic_write=_any_of([re.escape(k) for k in routing_keys(name)]),
        dead_letter_write=_any_of([re.escape(q) for q in queues]),
    )
