"""The audit log of replays and discards (`dlq_audit`): every run is recorded, and a run left
`started` (killed, cut off) is closed as interrupted by the next one."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Sequence

import asyncpg

from shared.config import Settings
from shared.ops.dlq.letters import (
    ACTIONS,
    INTERRUPTED,
    AuditEntry,
    AuditUnavailable,
    AuditUnreachable,
    Filter,
    Outcome,
)

# --------------------------------------------------------------------------- audit log


class Audit:
    """The `dlq_audit` table: one row per replay or discard, `started` then `completed`."""

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        self.conn = conn

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: Settings) -> AsyncIterator[Audit]:
        try:
            conn = await asyncpg.connect(settings.database_url)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise AuditUnreachable(
                f"cannot connect to PostgreSQL for the audit log: {exc}"
            ) from exc
        try:
            yield cls(conn)
        finally:
            await conn.close()

    async def start(self, action: str, actor: str, selection: Filter) -> int:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        try:
            audit_id = await self.conn.fetchval(
                """INSERT INTO dlq_audit (action, actor, filter, host, pid)
                   VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id""",
                action,
                actor,
                json.dumps(selection.describe()),
                socket.gethostname(),
                os.getpid(),
            )
        except asyncpg.UndefinedTableError as exc:
            raise AuditUnavailable(
                "the dlq_audit table is missing: run `ticketq db migrate` first"
            ) from exc
        assert isinstance(audit_id, int)
        return audit_id

    async def progress(self, audit_id: int, message_ids: Sequence[str]) -> None:
        """Record messages about to leave the DLQ (before their ack)."""
        await self.conn.execute(
            "UPDATE dlq_audit SET message_ids = message_ids || $2::text[] WHERE id = $1",
            audit_id,
            list(message_ids),
        )

    async def close_interrupted(self, by: int) -> list[int]:
        """Close the rows of earlier runs still `started` (killed, or cut off from the database
        or the broker): `failed`, the error starting `interrupted:`. Only a run holding the
        tool's lock may call this; their `message_ids` stay as the record of what they moved.

        (`failed` and not a status of its own: the table's CHECK allows started, completed and
        failed, and a migration is not this change's to make.)
        """
        rows = await self.conn.fetch(
            """UPDATE dlq_audit
                  SET status = 'failed', finished_at = now(),
                      error = $2 || ' the run ended without closing its row'
                              || ' (found by run ' || $1::bigint || ')'
                WHERE status = 'started' AND id <> $1
            RETURNING id""",
            by,
            INTERRUPTED,
        )
        return sorted(r["id"] for r in rows)

    async def finish(self, outcome: Outcome) -> None:
        assert outcome.audit_id is not None
        await self.conn.execute(
            """UPDATE dlq_audit
                  SET status = $2, finished_at = now(), matched = $3, succeeded = $4,
                      failed = $5, error = $6
                WHERE id = $1""",
            outcome.audit_id,
            "completed" if outcome.ok else "failed",
            len(outcome.matched),
            len(outcome.done),
            len(outcome.failed),
            outcome.error,
        )

    async def entries(self, limit: int = 20) -> list[AuditEntry]:
        try:
            rows = await self.conn.fetch(
                "SELECT * FROM dlq_audit ORDER BY started_at DESC, id DESC LIMIT $1", limit
            )
        except asyncpg.UndefinedTableError as exc:
            raise AuditUnavailable(
                "the dlq_audit table is missing: run `ticketq db migrate` first"
            ) from exc
        return [
            AuditEntry(
                id=r["id"],
                action=r["action"],
                actor=r["actor"],
                status=r["status"],
                filter=json.loads(r["filter"]) if isinstance(r["filter"], str) else r["filter"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                matched=r["matched"],
                succeeded=r["succeeded"],
                failed=r["failed"],
                message_ids=list(r["message_ids"]),
                error=r["error"],
                host=r["host"],
                pid=r["pid"],
            )
            for r in rows
        ]


async def audit_entries(settings: Settings, limit: int = 20) -> list[AuditEntry]:
    async with Audit.connect(settings) as audit:
        return await audit.entries(limit)
