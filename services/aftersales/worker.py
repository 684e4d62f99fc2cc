"""The aftersales worker: its queue and the shared `tickets` command queue, on one screen.

Consumes (from `services.catalogue`): `aftersales` (new tickets, follow-ups, results back,
tasks handed to after-sales) and `tickets` (agents' commands, shared with the other desk).
Background: the ticket clocks' timer loop (SPEC §8), and assigning tickets that waited
(off hours, nobody online).
"""

from __future__ import annotations

from services.catalogue import CATALOGUE
from shared.bootstrap import Service
from shared.tickets.desk import assign_waiting, desk_handlers, desk_timers
from shared.tickets.roles import Role

SERVICE = Service(
    name="aftersales",
    catalogue=CATALOGUE,
    handlers=desk_handlers(Role.AFTERSALES),
    background=(assign_waiting(Role.AFTERSALES),),
    timers=desk_timers(),
)
