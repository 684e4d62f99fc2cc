"""The warehouse worker, on one screen.

Consumes `warehouse` (from `services.catalogue`): tasks handed to the warehouse wait there until its
staff complete them with an operation (`WarehouseOperation`: ledger row and handoff result in one
transaction, `services.warehouse.operations.OPERATIONS`); staff adjust stock by hand with a
recorded reason (`AdjustStock`). No background loops.
"""

from __future__ import annotations

from services.catalogue import CATALOGUE
from services.warehouse.contracts import AdjustStock, WarehouseOperation
from services.warehouse.operations import OPERATIONS
from services.warehouse.stock import adjust_stock
from shared.bootstrap import Service
from shared.tickets.contracts import HandoffRequested
from shared.tickets.desk import task_arrived
from shared.tickets.operations import operation_handler
from shared.tickets.reads import WAREHOUSE_READS
from shared.tickets.roles import Role

SERVICE = Service(
    name="warehouse",
    catalogue=CATALOGUE,
    handlers={
        HandoffRequested: task_arrived,
        WarehouseOperation: operation_handler(Role.WAREHOUSE, OPERATIONS),
        AdjustStock: adjust_stock,
        **WAREHOUSE_READS,
    },
)
