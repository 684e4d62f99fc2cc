"""Intake's adapter: reads the database, asks `decide`, writes the ticket and its messages."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.intake.contracts import SubmitTicket
from services.intake.decide import AttachFollowUp, OpenNewTicket, OpenTicket, route_contact
from services.intake.orders import ORDER_COLUMNS, record, times_from, times_of
from shared import tickets
from shared.db import Connection
from shared.messaging.runtime import Incoming, Outcome, Transaction
from shared.tickets import Actor, Open, Rejected, decide, open_ticket
from shared.tickets.clocks import OrderTimes
from shared.tickets.contracts import FollowUpAttached, Order, TicketRouted
from shared.tickets.roles import Role
from shared.tickets.store import insert_ticket, load_ticket, lock_order, save_decision
from shared.tickets.timing import apply_clocks, apply_opening_clocks

SHOP_TIME = ZoneInfo("Asia/Shanghai")
ACTOR_ID, ACTOR_NAME = "system:intake", "intake"


async def submit_ticket(tx: Transaction, msg: Incoming[SubmitTicket]) -> Outcome:
    contact, conn = msg.payload, tx.conn
    unfinished, known = None, None
    if contact.order is not None:
        # Two contacts about one order, on two replicas at once, must not open two tickets.
        await lock_order(conn, contact.order.id)
        unfinished, known = await _order_state(conn, contact.order.id)
    decision = route_contact(contact, unfinished)
    follow_up = isinstance(decision, AttachFollowUp)

    # The contact row is the dedup claim on (source, external_id), for ever: a re-published
    # copy finds it taken, a concurrent one waits here and then finds it taken. A new
    # ticket's id is minted in the same statement: T<shop date>-<number>.
    ticket_id = await conn.fetchval(
        """INSERT INTO ticket_contacts (source, external_id, ticket_id, is_follow_up, channel,
                                        subject, body, message_id, occurred_at)
           VALUES ($1, $2, coalesce($3, (
                       SELECT $10 || lpad(n::text, greatest(6, length(n::text)), '0')
                       FROM nextval('ticket_number') AS n)),
                   $4, $5, $6, $7, $8, $9)
           ON CONFLICT DO NOTHING RETURNING ticket_id""",
        contact.source,
        contact.external_id,
        decision.ticket_id if isinstance(decision, AttachFollowUp) else None,
        follow_up,
        contact.channel.value,
        contact.subject,
        contact.text,
        msg.envelope.message_id,
        contact.occurred_at,
        f"T{tx.now.astimezone(SHOP_TIME):%y%m%d}-",
    )
    if ticket_id is None:
        known = await conn.fetchval(
            "SELECT ticket_id FROM ticket_contacts WHERE source = $1 AND external_id = $2",
            contact.source,
            contact.external_id,
        )
        return Outcome("duplicate_contact", known)
    if isinstance(decision, OpenNewTicket):
        await _open(tx, msg, ticket_id, decision, known, tx.now)
        return Outcome("created", ticket_id)
    await _attach(tx, msg, decision, tx.now)
    return Outcome("follow_up", ticket_id)


async def _order_state(
    conn: Connection, order_id: str
) -> tuple[OpenTicket | None, OrderTimes | None]:
    """The order's unfinished ticket and what the shop knows of the order (None: nothing yet),
    in one statement (read under the order's lock, so nothing changes them meanwhile)."""
    row = await conn.fetchrow(
        f"""SELECT t.id, t.owner_role, t.owner_agent_id, t.first_handler_id,
                   t.first_handler_role, o.order_id AS known_order,
                   {", ".join(f"o.{c}" for c in ORDER_COLUMNS)}
              FROM (VALUES ($1::text)) AS k (order_id)
              LEFT JOIN orders o ON o.order_id = k.order_id
              LEFT JOIN LATERAL (SELECT id, owner_role, owner_agent_id, first_handler_id,
                                        first_handler_role
                                   FROM tickets
                                  WHERE order_id = k.order_id AND status <> 'closed'
                                  LIMIT 1) t ON true""",
        order_id,
    )
    assert row is not None  # one row whatever is known
    known = times_from(row if row["known_order"] is not None else None)
    if row["id"] is None:
        return None, known
    return OpenTicket(
        id=row["id"],
        owner_role=Role(row["owner_role"]),
        owner_agent_id=row["owner_agent_id"],
        first_handler_id=row["first_handler_id"],
        first_handler_role=Role(row["first_handler_role"]) if row["first_handler_role"] else None,
    ), known


# Intake acts on tickets as this actor (history's who).
INTAKE = Actor(ACTOR_ID, ACTOR_NAME)


async def _open(
    tx: Transaction,
    msg: Incoming[SubmitTicket],
    ticket_id: str,
    decision: OpenNewTicket,
    known: OrderTimes | None,
    now: datetime,
) -> None:
    """Born in the aggregate (`open_ticket`), then routed to its role's queue."""
    contact, order = msg.payload, msg.payload.order
    # What the contact says of its order, with what order events told before it came.
    times = OrderTimes()
    order_data = None
    if order is not None:
        _, times = await record(tx.conn, order.id, known, times_of(order))
        order_data = order.model_copy(
            update={k: v for k, v in vars(times).items() if v and k in Order.model_fields}
        ).model_dump(mode="json")
    opened = open_ticket(
        Open(
            actor=INTAKE,
            at=now,
            message_id=msg.envelope.message_id,
            ticket_id=ticket_id,
            kind=decision.kind,
            role=decision.role,
        )
    )
    await insert_ticket(
        tx.conn,
        opened,
        {
            "channel": contact.channel.value,
            "priority": contact.priority.value,
            "source": contact.source,
            "external_id": contact.external_id,
            "customer_id": contact.customer.id,
            "customer": contact.customer.model_dump(mode="json"),
            "order_id": order.id if order else None,
            "order_data": order_data,
            "subject": contact.subject,
            "body": contact.text,
            "attachments": [a.model_dump(mode="json") for a in contact.attachments],
            "opened_at": contact.occurred_at,
        },
    )
    await apply_opening_clocks(tx.conn, opened, times if order is not None else None, now)
    tx.emit(
        decision.role.value,
        TicketRouted(
            ticket_id=ticket_id,
            kind=decision.kind,
            role=decision.role,
            priority=contact.priority,
            subject=contact.subject,
            customer_id=contact.customer.id,
            order_id=order.id if order else None,
            routed_at=now,
        ),
        ticket_id=ticket_id,
    )


async def _attach(
    tx: Transaction, msg: Incoming[SubmitTicket], decision: AttachFollowUp, now: datetime
) -> None:
    """The contact joins the ticket through the aggregate; a resolved ticket reopens."""
    contact = msg.payload
    ticket = await load_ticket(tx.conn, decision.ticket_id)
    assert ticket is not None  # found open under the order's lock
    attached = decide(
        ticket,
        tickets.AttachFollowUp(
            actor=INTAKE,
            at=now,
            message_id=msg.envelope.message_id,
            source=contact.source,
            external_id=contact.external_id,
        ),
    )
    if isinstance(attached, Rejected):  # only a closed ticket refuses; intake never picks one
        raise RuntimeError(f"follow-up refused by {ticket.id}: {attached.message}")
    await save_decision(tx.conn, attached)
    await apply_clocks(tx.conn, attached, now)
    tx.emit(
        decision.role.value,
        FollowUpAttached(
            ticket_id=decision.ticket_id,
            source=contact.source,
            external_id=contact.external_id,
            channel=contact.channel,
            subject=contact.subject,
            text=contact.text,
            role=decision.role,
            agent_id=decision.agent_id,
            attached_at=now,
        ),
        ticket_id=decision.ticket_id,
    )
