"""The intake worker, on one screen.

Consumes `intake` (from `services.catalogue`): customer contacts (`ticket.submit`) are validated,
deduplicated, classified and opened as tickets routed to `presale` or `aftersales`, or attached
to an unfinished ticket as follow-ups; upstream order events (`order.paid|shipped|signed|closed`)
update what the shop knows of an order and its tickets' clocks. No background loops.
"""

from __future__ import annotations

from services.catalogue import CATALOGUE
from services.intake.contracts import (
    OrderClosed,
    OrderPaid,
    OrderShipped,
    OrderSigned,
    SubmitTicket,
)
from services.intake.handlers import submit_ticket
from services.intake.orders import order_event
from shared.bootstrap import Service

SERVICE = Service(
    name="intake",
    catalogue=CATALOGUE,
    handlers={
        SubmitTicket: submit_ticket,
        OrderPaid: order_event,
        OrderShipped: order_event,
        OrderSigned: order_event,
        OrderClosed: order_event,
    },
)
