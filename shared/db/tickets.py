"""Ticket rows and their append-only history: the statements every service shares."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.db import Connection


async def append_history(
    conn: Connection,
    *,
    ticket_id: str,
    at: datetime,
    actor_id: str,
    actor_name: str,
    action: str,
    message_id: str,
    detail: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO ticket_history
               (ticket_id, at, actor_id, actor_name, action, detail, reason, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        ticket_id,
        at,
        actor_id,
        actor_name,
        action,
        dict(detail or {}),
        reason,
        message_id,
    )
