from __future__ import annotations

from shared.bootstrap import Service

# Handoff tasks and their results arrive with the ownership core; until then every message
# here is dead-lettered as an unknown type rather than silently dropped.
SERVICE = Service(name="finance", handlers={})
