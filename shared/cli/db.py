"""The operators' connection to the system of record (`calendar load`, `agent password|revoke`:
the `ops` credentials; the daily report: the `report` ones). Agents' commands never open it:
their reads are requests to the workers (`shared.cli.reads`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import TypeAlias

import asyncpg

from shared.cli.output import Unreachable
from shared.config import Settings

DbConnection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"


def where(url: str) -> str:
    """Host, port and path of a URL, never its credentials."""
    return url.rsplit("@", 1)[-1]


@contextlib.asynccontextmanager
async def database(
    settings: Settings, *, connect_timeout: float = 10.0
) -> AsyncIterator[DbConnection]:
    """One connection to the system of record; failing to reach it raises `Unreachable`."""
    place = where(settings.database_url)
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=connect_timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unreachable(
            f"cannot reach the database at {place}: {exc or type(exc).__name__}"
        ) from None
    try:
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        yield conn
    except asyncpg.UndefinedTableError as exc:
        raise Unreachable(
            f"the database at {place} has no ticketq schema ({exc}); run `ticketq db migrate`"
        ) from None
    except (OSError, asyncpg.ConnectionDoesNotExistError) as exc:
        raise Unreachable(f"lost the database at {place}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=2)
