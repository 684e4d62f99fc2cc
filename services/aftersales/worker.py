"""The aftersales worker, on one screen.

Consumes (from `services.catalogue`): `aftersales` (new tickets, follow-ups, results back,
tasks handed to after-sales), `platform` (the platform's interventions and rulings) and `desk`
(agents' and supervisors' commands, shared with the other desk). Background: the ticket
clocks' timer loop (SPEC §8, with the platform's evidence deadline), and assigning tickets
that waited (off hours, nobody online). Flows: every desk's, loaded and validated here, so
the worker does not start on an invalid one (`services.flows`).
"""

from __future__ import annotations

from services.aftersales.platform import evidence_due, platform_handlers
from services.catalogue import CATALOGUE
from services.flows import load_all
from shared.bootstrap import Service
from shared.tickets.clocks import TimerKind
from shared.tickets.desk import assign_waiting, desk_handlers, desk_timers
from shared.tickets.reads import desk_reads
from shared.tickets.roles import Role

FLOWS = load_all()

SERVICE = Service(
    name="aftersales",
    catalogue=CATALOGUE,
    handlers={
        **desk_handlers(Role.AFTERSALES, FLOWS),
        **platform_handlers(FLOWS),
        **desk_reads(FLOWS),
    },
    background=(assign_waiting(Role.AFTERSALES, flows=FLOWS),),
    timers={**desk_timers(FLOWS), TimerKind.EVIDENCE_DUE: evidence_due(FLOWS)},
)
