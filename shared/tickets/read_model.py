"""The one read model of tickets: what the CLI, the web workbench and the report read.

Queries only (no writes), over the tickets' state; personal data is masked here, before any
view sees it, unless a caller that may reveal it asks otherwise.
"""

from __future__ import annotations

from typing import Any

from shared.db import Connection
from shared.pii import mask_detail
from shared.tickets.roles import Role


async def open_tasks(conn: Connection, role: Role) -> list[dict[str, Any]]:
    """Handoffs to `role` with no result yet, oldest first, from the tickets' state."""
    rows = await conn.fetch(
        """SELECT t.id AS ticket_id, t.order_id, h->>'id' AS handoff_id,
                  h->'task'->>'action' AS action, h->'task'->'data' AS data,
                  (h->>'opened_at')::timestamptz AS opened_at,
                  h->'opened_by'->>'id' AS opened_by, h->'taken_by'->>'id' AS taken_by,
                  t.first_handler_id
             FROM tickets t, jsonb_array_elements(t.state->'handoffs') h
            WHERE t.state IS NOT NULL AND t.status <> 'closed' AND h->>'role' = $1
              AND coalesce(jsonb_typeof(h->'result'), 'null') = 'null'
            ORDER BY (h->>'opened_at')::timestamptz, t.id""",
        role.value,
    )
    return [{**dict(r), "data": mask_detail(r["data"] or {})} for r in rows]
