"""The intake worker, on one screen.

Consumes `intake` (from `services.catalogue`): customer contacts (`ticket.submit`) are validated,
deduplicated, classified and opened as tickets routed to `presale` or `aftersales`, or attached
to an unfinished ticket as follow-ups. No background loops.
"""

from __future__ import annotations

from services.catalogue import CATALOGUE
from services.intake.contracts import SubmitTicket
from services.intake.handlers import submit_ticket
from shared.bootstrap import Service

SERVICE = Service(name="intake", catalogue=CATALOGUE, handlers={SubmitTicket: submit_ticket})
