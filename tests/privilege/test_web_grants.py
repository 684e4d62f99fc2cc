"""The workbench's reads work on its own database role (`ticketq setup`'s `web` principal):
every query a page makes, as that role, and nothing it may write."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest

from services.flows import load_all
from shared.agents.identity import SessionRefused, session_of
from shared.tickets.read_model import (
    agent_profile,
    clocks_of,
    history_after,
    last_history_id,
    list_tickets,
    open_tasks,
    supervisor_board,
    ticket_view,
    tracked_tickets,
)
from shared.tickets.roles import Role
from tests.helpers import T0
from tests.privilege.conftest import Deployment


async def test_every_page_query_runs_as_the_web_role(deployment: Deployment) -> None:
    conn = await deployment.connect("web")
    try:
        assert await agent_profile(conn, "a1") is None
        await list_tickets(conn, owner="a1", now=T0)
        await list_tickets(conn, absent_first_handler=True, now=T0)
        await tracked_tickets(conn, "a1")
        await clocks_of(conn, ["T-1"], T0)
        assert await ticket_view(conn, "T-1", load_all(), now=T0) is None
        await open_tasks(conn, Role.FINANCE)
        await supervisor_board(
            conn, now=T0, day_start=T0 - timedelta(hours=10), approval_threshold=Decimal(50)
        )
        await history_after(conn, 0, ticket_id="T-1")
        assert await last_history_id(conn) == 0
        with pytest.raises(SessionRefused):
            await session_of(conn, "no-such-token", T0)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE tickets SET status = 'closed'")
    finally:
        await conn.close()
