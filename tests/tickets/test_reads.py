"""The agent CLI's reads as signed requests to the workers (issue #12): refused without a
session, masked, never kept with personal data, and no database URL needed by the CLI."""

from __future__ import annotations

import pytest

from services.intake.client import publish_ticket
from shared.cli.commands import ask
from shared.config import Settings
from shared.db import Pool
from shared.tickets import Actor
from shared.tickets.contracts import Customer
from shared.tickets.read_requests import (
    ListAgents,
    ListTasks,
    ListTickets,
    ReadReply,
    ReadRequest,
    ShowLedger,
    ShowStock,
    ShowTicket,
)
from shared.tickets.reads import may_read
from shared.tickets.roles import Role
from tests.helpers import contact, token_for, wait_until
from tests.staff import Cli

PHONE = "13812345678"
CUSTOMER = Customer(id="c-9", nick="小王", name="王小明", phone=PHONE, address="世纪大道100号")


# --- who may read what (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "request_", "allowed"),
    [
        ({Role.PRESALE}, ListTickets(actor_id="x"), True),
        ({Role.WAREHOUSE}, ShowTicket(actor_id="x", ticket_id="T-1"), True),
        ({Role.FINANCE}, ListAgents(actor_id="x"), True),
        ({Role.WAREHOUSE}, ShowStock(actor_id="x"), True),
        ({Role.FINANCE}, ShowStock(actor_id="x"), False),
        ({Role.FINANCE}, ShowLedger(actor_id="x"), True),
        ({Role.AFTERSALES}, ShowLedger(actor_id="x"), False),
        ({Role.AFTERSALES}, ListTasks(actor_id="x", role=Role.AFTERSALES), True),
        ({Role.PRESALE}, ListTasks(actor_id="x", role=Role.FINANCE), False),
        ({Role.SUPERVISOR}, ShowLedger(actor_id="x"), True),
        ({Role.SUPERVISOR}, ListTasks(actor_id="x", role=Role.WAREHOUSE), True),
    ],
)
def test_tickets_for_every_agent_ledgers_and_tasks_for_their_role_and_supervisors(
    roles: set[Role], request_: ReadRequest, allowed: bool
) -> None:
    why = may_read(Actor("x", "X", frozenset(roles)), request_)
    assert (why is None) == allowed, why


# --- against the workers --------------------------------------------------------------------


async def _ticket(settings: Settings, db: Pool, name: str) -> str:
    await publish_ticket(
        settings.amqp_url,
        contact(name, customer=CUSTOMER, subject=f"电话 {PHONE}", text=f"打我电话{PHONE}"),
    )

    async def stored() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM tickets WHERE external_id = $1", name))

    await wait_until(stored, what="intake's ticket")
    return str(await db.fetchval("SELECT id FROM tickets WHERE external_id = $1", name))


async def test_a_read_without_a_session_is_refused(
    settings: Settings, db: Pool, desk: None, cli: Cli
) -> None:
    tid = await _ticket(settings, db, "rd-1")
    for token in (None, "not-a-session"):
        reply = await ask(
            settings, ShowTicket(actor_id="a1", ticket_id=tid), ReadReply, sender="a1", token=token
        )
        assert not reply.accepted and reply.data is None, reply
        assert reply.code == "not_signed_in", reply
    stolen = await ask(
        settings,
        ShowTicket(actor_id="s1", ticket_id=tid),  # names another agent than the session's
        ReadReply,
        sender="s1",
        token=await token_for(settings, "a1"),
    )
    assert (stolen.accepted, stolen.code) == (False, "actor_mismatch")
    nobody = await cli("tickets", "show", tid)  # no sign-in in this session file
    assert nobody.exit_code == 1 and "not signed in" in nobody.stderr, nobody
    assert PHONE not in nobody.output


async def test_reads_carry_no_personal_data_and_none_is_kept(
    settings: Settings, db: Pool, desk: None
) -> None:
    tid = await _ticket(settings, db, "rd-2")
    tokens = {a: await token_for(settings, a) for a in ("a1", "w1", "f1")}
    reads = [
        ("a1", ListTickets(actor_id="a1", include_closed=True)),
        ("a1", ShowTicket(actor_id="a1", ticket_id=tid)),
        ("a1", ListTasks(actor_id="a1", role=Role.AFTERSALES)),
        ("a1", ListAgents(actor_id="a1")),
        ("w1", ShowStock(actor_id="w1")),
        ("f1", ShowLedger(actor_id="f1", ticket_id=tid)),
    ]
    for agent, request in reads:
        reply = await ask(settings, request, ReadReply, sender=agent, token=tokens[agent])
        assert reply.accepted, (request, reply)
        assert PHONE not in reply.model_dump_json(), request
    shown = await ask(
        settings,
        ShowTicket(actor_id="a1", ticket_id=tid),
        ReadReply,
        sender="a1",
        token=tokens["a1"],
        message_id="read-once",
    )
    assert shown.data["customer"]["phone"] == "*********78" and "王小明" not in str(shown.data)
    kept = [bytes(r["body"]).decode() for r in await db.fetch("SELECT body FROM replies")]
    assert len(kept) >= len(reads) + 1 and not [k for k in kept if PHONE in k or "王小明" in k]
    again = await ask(  # the same request re-sent: told to ask again, shown nothing
        settings,
        ShowTicket(actor_id="a1", ticket_id=tid),
        ReadReply,
        sender="a1",
        token=tokens["a1"],
        message_id="read-once",
    )
    assert (again.accepted, again.code, again.data) == (False, "read_not_kept", None)


async def test_tickets_show_and_list_need_no_database_url_in_the_cli(
    settings: Settings, db: Pool, desk: None, cli: Cli
) -> None:
    tid = await _ticket(settings, db, "rd-3")
    no_database = {"TICKETQ_DATABASE_URL": None}
    shown = await cli("tickets", "show", tid, "--as", "a1", env=no_database)
    assert shown.exit_code == 0, shown
    assert f"ticket {tid}" in shown.stdout and "(personal data masked)" in shown.stdout
    assert PHONE not in shown.output and "王小明" not in shown.output
    dead_database = {"TICKETQ_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/x"}
    listed = await cli("tickets", "list", "--json", env=dead_database)  # a1 signed in above
    assert listed.exit_code == 0, listed
    assert [t["id"] for t in listed.json()] == [tid]
    revealed = await cli("tickets", "show", tid, "--reveal", "--as", "s1", env=no_database)
    assert revealed.exit_code == 0, revealed  # as text too: its times made times again
    assert PHONE in revealed.stdout and "(personal data masked)" not in revealed.stdout
