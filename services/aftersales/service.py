from __future__ import annotations

from shared.bootstrap import Service
from shared.desk import desk_handlers

SERVICE = Service(name="aftersales", handlers=desk_handlers("aftersales"))
