from __future__ import annotations

from shared.bootstrap import Service
from shared.desk import desk_handlers
from shared.domain.roles import Role

# Handoff tasks wait here until the role's staff complete them with an operation
# (`ticketq warehouse ...`: ledger row and result in one transaction, see shared.effects).
SERVICE = Service(name="warehouse", handlers=desk_handlers(Role.WAREHOUSE))
