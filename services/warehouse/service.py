from __future__ import annotations

from shared.bootstrap import Service
from shared.desk import desk_handlers
from shared.domain.roles import Role

# Handoff tasks wait here until the role's staff record their result (`ticketq result`).
SERVICE = Service(name="warehouse", handlers=desk_handlers(Role.WAREHOUSE))
