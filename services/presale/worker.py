"""The presale worker: its queue and the shared `tickets` command queue, on one screen.

Consumes (from `services.catalogue`): `presale` (new tickets, follow-ups, results back) and
`tickets` (agents' commands, shared with the other desk). Background: the ticket clocks'
timer loop (SPEC §8), and assigning tickets that waited (off hours, nobody online).
"""

from __future__ import annotations

from services.catalogue import CATALOGUE
from shared.bootstrap import Service
from shared.tickets.desk import assign_waiting, desk_handlers, desk_timers
from shared.tickets.roles import Role

SERVICE = Service(
    name="presale",
    catalogue=CATALOGUE,
    handlers=desk_handlers(Role.PRESALE),
    background=(assign_waiting(Role.PRESALE),),
    timers=desk_timers(),
)
