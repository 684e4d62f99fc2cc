"""The agents' CLI reads with its broker user only (issue #12): it has no database role, and the
workers that answer its reads do so on their own grants."""

from __future__ import annotations

from services.aftersales.worker import SERVICE as AFTERSALES
from services.finance.worker import SERVICE as FINANCE
from services.warehouse.worker import SERVICE as WAREHOUSE
from shared.bootstrap import start_service
from shared.cli.commands import ask
from shared.clock import FixedClock
from shared.db import create_pool
from shared.tickets.read_requests import (
    ListAgents,
    ListTasks,
    ListTickets,
    ReadReply,
    ShowCalendarDay,
    ShowLedger,
    ShowStock,
    ShowTicket,
)
from shared.tickets.roles import Role
from tests.helpers import T0, token_for
from tests.privilege.conftest import Deployment
from tests.staff import add_roster


async def test_the_cli_has_no_database_role(deployment: Deployment) -> None:
    assert "cli" not in deployment.credentials.database
    conn = await deployment.connect("finance")
    try:
        user = deployment.logins.users["cli"]
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", user) == 0
    finally:
        await conn.close()


async def test_every_read_is_answered_on_the_workers_own_grants(deployment: Deployment) -> None:
    admin = await create_pool(deployment.admin, size=2)
    await add_roster(admin)
    await admin.execute(
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                               customer_id, customer, subject, body, owner_role, opened_at)
           VALUES ('T-1', 'inquiry', 'queued', 'wangwang', 'normal', 's', 'e', 'c',
                   '{}', 's', 'b', 'aftersales', now())"""
    )
    clock = FixedClock(T0)
    running = [
        await start_service(s, deployment.settings(s.name), clock=clock)
        for s in (AFTERSALES, WAREHOUSE, FINANCE)
    ]
    cli = deployment.settings("cli")  # its own broker user
    try:
        reads = [
            ("a1", ListTickets(actor_id="a1", due_within_seconds=3600, breached=True)),
            ("a1", ListTickets(actor_id="a1", absent_first_handler=True, waiting_for="a1")),
            ("a1", ShowTicket(actor_id="a1", ticket_id="T-1")),
            ("a1", ListTasks(actor_id="a1", role=Role.AFTERSALES)),
            ("a1", ListAgents(actor_id="a1")),
            ("a1", ShowCalendarDay(actor_id="a1")),
            ("w1", ShowStock(actor_id="w1")),
            ("f1", ShowLedger(actor_id="f1")),
        ]
        for agent, request in reads:
            token = await token_for(deployment.admin, agent)
            reply = await ask(cli, request, ReadReply, sender=agent, token=token)
            assert reply.accepted, (request, reply)
    finally:
        for r in running:
            await r.stop()
        await admin.close()
