"""The finance worker, on one screen.

Consumes `finance` (from `services.catalogue`): tasks handed to the finance wait there until its
staff complete them with an operation (`FinanceOperation`: ledger row and handoff result in one
transaction, `services.finance.operations.OPERATIONS`). No background loops.
"""

from __future__ import annotations

from services.catalogue import CATALOGUE
from services.finance.contracts import FinanceOperation
from services.finance.operations import OPERATIONS
from shared.bootstrap import Service
from shared.tickets.contracts import HandoffRequested
from shared.tickets.desk import task_arrived
from shared.tickets.operations import operation_handler
from shared.tickets.reads import FINANCE_READS
from shared.tickets.roles import Role

SERVICE = Service(
    name="finance",
    catalogue=CATALOGUE,
    handlers={
        HandoffRequested: task_arrived,
        FinanceOperation: operation_handler(Role.FINANCE, OPERATIONS),
        **FINANCE_READS,
    },
)
