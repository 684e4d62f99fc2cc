"""The one place where each queue and each message type of ticketq is declared.

Topology (`shared.messaging.topology.declare_topology`), worker registration (each room's
`worker.py` is checked against it at start-up), the contracts and AsyncAPI
(`contracts/generate.py`) and docker-compose's workers all derive from `CATALOGUE`;
tests/test_catalogue.py fails on drift.
"""

from __future__ import annotations

from services.aftersales.contracts import PlatformInterventionOpened, PlatformRuling
from services.finance.contracts import FinanceOperation
from services.intake.contracts import (
    OrderClosed,
    OrderPaid,
    OrderShipped,
    OrderSigned,
    SubmitTicket,
)
from services.warehouse.contracts import AdjustStock, StockAdjusted, WarehouseOperation
from shared.agents.contracts import (
    LoadRoster,
    RosterReply,
    SetPresence,
    SignIn,
    SignInReply,
    SignOut,
)
from shared.messaging.catalogue import Catalogue, MessageType, Queue
from shared.tickets.contracts import (
    CommandReply,
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
    ReadReply,
    ShowCalendarDay,
    ShowLedger,
    ShowStock,
    ShowTicket,
)

DESKS = ("presale", "aftersales")  # the roles that open and close tickets with customers

CATALOGUE = Catalogue(
    queues=(
        Queue("intake", ("intake",), "Customer contacts from upstream systems"),
        Queue("presale", ("presale",), "Pre-sale tickets: new, follow-ups, results back"),
        Queue("aftersales", ("aftersales",), "After-sales tickets and tasks handed to after-sales"),
        Queue("warehouse", ("warehouse",), "Warehouse tasks and the warehouse's operations"),
        Queue("finance", ("finance",), "Finance tasks and finance's operations"),
        # The platform's events have their own queue, so the upstream systems publish to
        # nothing a worker trusts from its peers (results, tasks on `aftersales`).
        Queue("platform", ("aftersales",), "The platform's interventions and rulings (小二介入)"),
        # Agents' commands: any desk (pre-sale or after-sales replica) applies them, so a
        # sender needs to know nothing about the ticket to send one.
        Queue(
            "desk",
            DESKS,
            "Agents' and supervisors' commands: tickets, reveals, the roster (request/reply)",
        ),
    ),
    types=(
        MessageType(SubmitTicket, ("intake",), "An upstream system submits a customer contact"),
        MessageType(OrderPaid, ("intake",), "The order centre: an order was paid"),
        MessageType(OrderShipped, ("intake",), "The order centre: an order was shipped"),
        MessageType(OrderSigned, ("intake",), "The order centre: an order was signed for"),
        MessageType(OrderClosed, ("intake",), "The order centre: an order's trade was closed"),
        MessageType(
            PlatformInterventionOpened,
            ("platform",),
            "The platform intervened on an order (小二介入), with its deadline for evidence",
        ),
        MessageType(
            PlatformRuling,
            ("platform",),
            "The platform ruled on an intervention: answers the flow's wait for it",
        ),
        MessageType(TicketRouted, DESKS, "Intake routed a new ticket to a role's queue"),
        MessageType(
            FollowUpAttached, DESKS, "A follow-up contact was attached to an unfinished ticket"
        ),
        MessageType(
            TicketCommand,
            ("desk",),
            "An agent's command on a ticket (request/reply: set reply_to)",
            any_queue=True,
            reply=CommandReply,
        ),
        MessageType(
            RevealTicket,
            ("desk",),
            "A supervisor asks for a ticket's personal data unmasked (request/reply; recorded)",
            any_queue=True,
            reply=CommandReply,
        ),
        MessageType(
            LoadRoster,
            ("desk",),
            "Load agents, roles and shifts from a roster file (request/reply)",
            any_queue=True,
            reply=RosterReply,
        ),
        MessageType(
            SetPresence,
            ("desk",),
            "An agent comes online or goes offline (request/reply)",
            any_queue=True,
            reply=RosterReply,
        ),
        MessageType(
            ListTickets,
            ("desk",),
            "An agent reads a page of tickets, masked (request/reply, signed)",
            any_queue=True,
            reply=ReadReply,
        ),
        MessageType(
            ShowTicket,
            ("desk",),
            "An agent reads one ticket with its history, masked (request/reply, signed)",
            any_queue=True,
            reply=ReadReply,
        ),
        MessageType(
            ListTasks,
            ("desk",),
            "A role's staff read the tasks handed to it (request/reply, signed)",
            any_queue=True,
            reply=ReadReply,
        ),
        MessageType(
            ListAgents,
            ("desk",),
            "An agent reads the roster: presence, shifts, load (request/reply, signed)",
            any_queue=True,
            reply=ReadReply,
        ),
        MessageType(
            ShowCalendarDay,
            ("desk",),
            "An agent reads a shop day's staffed hours (request/reply, signed)",
            any_queue=True,
            reply=ReadReply,
        ),
        MessageType(
            ShowStock,
            ("warehouse",),
            "Warehouse staff read stock levels (request/reply, signed)",
            reply=ReadReply,
        ),
        MessageType(
            ShowLedger,
            ("finance",),
            "Finance staff read finance's ledger (request/reply, signed)",
            reply=ReadReply,
        ),
        MessageType(ReadReply, (), "The answer to a read: the view, masked, or why not"),
        MessageType(RosterReply, (), "The answer to a roster command"),
        MessageType(
            SignIn,
            ("desk",),
            "An agent signs in, the password in the `authorization` header (request/reply)",
            any_queue=True,
            reply=SignInReply,
        ),
        MessageType(
            SignOut,
            ("desk",),
            "An agent signs out: the session in the `authorization` header is revoked",
            any_queue=True,
            reply=SignInReply,
        ),
        MessageType(SignInReply, (), "The answer to a sign-in or sign-out: a session, or why not"),
        MessageType(
            WarehouseOperation,
            ("warehouse",),
            "A warehouse operation on a warehouse handoff (request/reply: set reply_to)",
            reply=CommandReply,
        ),
        MessageType(
            AdjustStock,
            ("warehouse",),
            "Warehouse staff adjust a stock level by hand, with the reason (request/reply)",
            reply=StockAdjusted,
        ),
        MessageType(StockAdjusted, (), "The answer to a stock adjustment"),
        MessageType(
            FinanceOperation,
            ("finance",),
            "A finance operation on a finance handoff (request/reply: set reply_to)",
            reply=CommandReply,
        ),
        MessageType(
            CommandReply, (), "The answer to a command or operation, sent to its reply_to queue"
        ),
        MessageType(
            HandoffRequested,
            ("aftersales", "warehouse", "finance"),
            "Work handed to a role with a task",
        ),
        MessageType(
            TicketReturned,
            DESKS,
            "Every handoff has a result: the ticket is back with its first handler",
        ),
    ),
)
