"""The presale worker, on one screen.

Consumes (from `services.catalogue`): `presale` (new tickets, follow-ups, results back) and
`desk` (agents' and supervisors' commands, shared with the other desk). Background: the ticket
clocks' timer loop (SPEC §8), and assigning tickets that waited (off hours, nobody online).
Flows: every desk's, loaded and validated here, so the worker does not start on an invalid one
(`services.flows`).
"""

from __future__ import annotations

from services.catalogue import CATALOGUE
from services.flows import load_all
from shared.bootstrap import Service
from shared.report.timer import report_timers
from shared.tickets.desk import assign_waiting, desk_handlers, desk_timers
from shared.tickets.reads import desk_reads
from shared.tickets.roles import Role

FLOWS = load_all()

SERVICE = Service(
    name="presale",
    catalogue=CATALOGUE,
    handlers={**desk_handlers(Role.PRESALE, FLOWS), **desk_reads(FLOWS)},
    background=(assign_waiting(Role.PRESALE, flows=FLOWS),),
    timers={**desk_timers(FLOWS), **report_timers()},  # and the daily report at midnight
)
