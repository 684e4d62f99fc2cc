from __future__ import annotations

from shared.bootstrap import Service
from shared.desk import assign_waiting, desk_handlers
from shared.domain.roles import Role

SERVICE = Service(
    name="aftersales",
    handlers=desk_handlers(Role.AFTERSALES),
    background=(assign_waiting(Role.AFTERSALES),),
)
