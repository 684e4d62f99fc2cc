from __future__ import annotations

from services.intake.handlers import submit_ticket
from shared.bootstrap import Service

SERVICE = Service(name="intake", handlers={"ticket.submit": submit_ticket})
