"""Agents who sign in (issue 12): passwords, sessions, and commands that act as the session's
agent only. Pure parts first, then on the real servers."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from aio_pika.abc import AbstractChannel

from services.aftersales.worker import SERVICE as AFTERSALES
from services.catalogue import CATALOGUE
from services.finance.contracts import ApprovePayoutArgs
from services.finance.worker import SERVICE as FINANCE
from services.intake.worker import SERVICE as INTAKE
from shared.agents.contracts import LoadRoster, RosterReply, SignIn, SignInReply, SignOut
from shared.agents.identity import (
    DESK_QUEUE,
    hash_password,
    needs_rehash,
    password_problem,
    revoke_agent,
    set_password,
    sign_in,
    sign_out,
    token_hash,
    verify_password,
)
from shared.bootstrap import start_service
from shared.cli.commands import ask, send_command
from shared.cli.session import remember, signed_in
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.messaging.envelope import Envelope
from shared.messaging.rpc import request
from shared.messaging.topology import AUTHORIZATION, EXCHANGE, amqp_message, dead_letter_queue
from shared.tickets.contracts import (
    ClaimArgs,
    CommandReply,
    ReassignArgs,
    ReplyArgs,
    RevealTicket,
    TicketCommand,
)
from tests.helpers import T0, captured_logs, command_for, depth, take_all, wait_until
from tests.staff import Cli, add_roster, hand_off, new_ticket

PASSWORD = "Correct-Horse-7731"  # distinctive: the tests look for it everywhere afterwards


# --- pure -------------------------------------------------------------------------------------


def test_a_password_hash_verifies_that_password_only() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert verify_password(hashed, PASSWORD)
    assert not verify_password(hashed, PASSWORD + "x")
    assert not verify_password("not a hash", PASSWORD)
    assert not needs_rehash(hashed)


def test_a_token_is_kept_as_its_hash() -> None:
    assert token_hash("abc") == token_hash("abc") != token_hash("abd")
    assert "abc" not in token_hash("abc") and len(token_hash("abc")) == 64


def test_short_or_padded_passwords_are_refused() -> None:
    assert password_problem("short") is not None
    assert password_problem(" padded-password ") is not None
    assert password_problem(PASSWORD) is None


def test_the_session_file_is_its_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "session"
    for agent in ("a1", "s1"):
        remember(
            SignInReply(accepted=True, message="ok", token=f"tok-{agent}", agent_id=agent), path
        )
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert signed_in(None, path) == ("s1", "tok-s1")  # the last one signed in
    assert signed_in("a1", path) == ("a1", "tok-a1")


def test_sign_ins_go_where_the_catalogue_sends_them() -> None:
    assert CATALOGUE.of(SignIn).queues[0] == DESK_QUEUE
    assert CATALOGUE.of(SignOut).queues[0] == DESK_QUEUE


# --- on the real servers ----------------------------------------------------------------------


@pytest.fixture
async def clock(settings: Settings, db: Pool, broker: object) -> AsyncIterator[FixedClock]:
    """Intake, after-sales (a desk: it takes sign-ins and commands) and finance, on a clock
    the test moves; a1 (after-sales) and s1 (supervisor) have passwords."""
    await add_roster(db)
    for agent in ("a1", "s1"):
        await set_password(db, agent, hash_password(PASSWORD), T0)  # type: ignore[arg-type]
    clock = FixedClock(T0)
    running = [await start_service(s, settings, clock=clock) for s in (INTAKE, AFTERSALES, FINANCE)]
    yield clock
    for r in running:
        await r.stop()


async def command(
    settings: Settings,
    ticket_id: str,
    actor: str,
    args: ReplyArgs | ClaimArgs | ReassignArgs,
    *,
    token: str,
) -> CommandReply:
    return await send_command(
        settings, TicketCommand(ticket_id=ticket_id, actor_id=actor, args=args), token=token
    )


async def test_sign_in_with_the_right_password_gives_a_shift_long_session(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    good = await sign_in(settings, "a1", PASSWORD)
    assert (good.accepted, good.agent_id, good.role, good.supervisor) == (
        True,
        "a1",
        "aftersales",
        False,
    )
    assert good.token and good.expires_at == T0 + timedelta(hours=12)
    kept = await db.fetchrow("SELECT * FROM agent_sessions")
    assert kept is not None and kept["token_hash"] == token_hash(good.token)
    assert (await sign_in(settings, "s1", PASSWORD)).supervisor

    for agent, password in (("a1", PASSWORD + "!"), ("nobody", PASSWORD), ("f1", PASSWORD)):
        bad = await sign_in(settings, agent, password)  # f1 has no password at all
        assert (bad.accepted, bad.code, bad.token) == (False, "bad_credentials", None)


async def test_a_re_sent_sign_in_is_told_but_never_given_the_token_again(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    async def once() -> SignInReply:
        return await request(
            settings,
            "desk",
            SignIn(agent_id="a1"),
            SignInReply,
            correlation_id=None,
            sender="test",
            message_id="sign-in-1",
            headers={AUTHORIZATION: PASSWORD},
        )

    first, again = await once(), await once()
    assert first.accepted and first.token
    assert again.accepted and again.token is None
    stored = await db.fetchval("SELECT body FROM replies WHERE message_id = 'sign-in-1'")
    assert first.token not in bytes(stored).decode()


async def test_the_acting_agent_is_the_sessions_never_the_claimed_one(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await new_ticket(settings, db, "who-1")
    a1 = (await sign_in(settings, "a1", PASSWORD)).token
    s1 = (await sign_in(settings, "s1", PASSWORD)).token
    assert a1 and s1
    version = await db.fetchval("SELECT version FROM tickets WHERE id = $1", tid)

    # a1's session claiming to be the supervisor, and the supervisor's claiming to be a1
    for claimed, token in (("s1", a1), ("a1", s1)):
        refused = await command(settings, tid, claimed, ReplyArgs(text="您好"), token=token)
        assert (refused.accepted, refused.code) == (False, "actor_mismatch"), refused
    for token in ("", "forged-token"):
        refused = await command(settings, tid, "a1", ReplyArgs(text="您好"), token=token)
        assert (refused.accepted, refused.code, refused.version) == (False, "not_signed_in", None)
    assert await db.fetchval("SELECT version FROM tickets WHERE id = $1", tid) == version

    done = await command(settings, tid, "a1", ReplyArgs(text="您好,我来处理"), token=a1)
    assert done.accepted, done
    actor = await db.fetchval(
        "SELECT actor_id FROM ticket_history WHERE ticket_id = $1 ORDER BY at DESC, id DESC "
        "LIMIT 1",
        tid,
    )
    assert actor == "a1"


async def test_expired_and_revoked_sessions_are_refused(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await new_ticket(settings, db, "exp-1")
    first = (await sign_in(settings, "a1", PASSWORD)).token
    assert first
    clock.advance(timedelta(hours=12, seconds=1))
    expired = await command(settings, tid, "a1", ReplyArgs(text="您好"), token=first)
    assert (expired.accepted, expired.code) == (False, "session_expired")

    second = (await sign_in(settings, "a1", PASSWORD)).token
    assert second
    out = await sign_out(settings, second)
    assert out.accepted and out.agent_id == "a1"
    revoked = await command(settings, tid, "a1", ReplyArgs(text="您好"), token=second)
    assert (revoked.accepted, revoked.code) == (False, "session_revoked")

    # An agent who leaves: every session of theirs ends at once.
    tokens = [(await sign_in(settings, "a1", PASSWORD)).token for _ in range(2)]
    assert await revoke_agent(db, "a1", clock.now()) == 2  # type: ignore[arg-type]
    for token in tokens:
        assert token
        gone = await command(settings, tid, "a1", ReplyArgs(text="您好"), token=token)
        assert gone.code == "session_revoked"


async def test_failed_sign_ins_are_limited_until_the_window_moves_on(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    for _ in range(5):
        assert (await sign_in(settings, "a1", "wrong-password")).code == "bad_credentials"
    limited = await sign_in(settings, "a1", PASSWORD)  # even the right one, now
    assert (limited.accepted, limited.code, limited.token) == (False, "too_many_attempts", None)
    assert (await sign_in(settings, "s1", PASSWORD)).accepted  # per agent id

    clock.advance(timedelta(minutes=15, seconds=1))
    assert (await sign_in(settings, "a1", PASSWORD)).accepted
    assert await db.fetchval("SELECT count(*) FROM sign_in_failures WHERE agent_id = 'a1'") == 0


async def test_supervisor_actions_are_refused_to_others_and_logged_without_personal_data(
    settings: Settings, db: Pool, clock: FixedClock
) -> None:
    tid = await new_ticket(settings, db, "sup-1")
    await db.execute("UPDATE agents SET roles = '{aftersales,finance}' WHERE id = 'a1'")
    a1 = (await sign_in(settings, "a1", PASSWORD)).token
    assert a1
    handoff = await hand_off(settings, db, tid, "finance", "payout")

    async with captured_logs("info") as logs:
        reassign = await command(
            settings, tid, "a1", ReassignArgs(new_first_handler_id="s1", reason="休假"), token=a1
        )
        reveal = await send_command(settings, RevealTicket(ticket_id=tid, actor_id="a1"), token=a1)
        approval = ApprovePayoutArgs(handoff_id=handoff, amount=Decimal("80.00"))
        approve = await send_command(settings, command_for(tid, "a1", approval), token=a1)
        roster = await ask(
            settings,
            LoadRoster(
                roster={
                    "agents": [{"id": "x1", "name": "X", "roles": ["presale"], "shifts": ["day"]}]
                },
                requested_by="a1",
            ),
            RosterReply,
            sender="a1",
            token=a1,
        )
    assert (reassign.accepted, reassign.code) == (False, "not_owner")
    assert "only a supervisor may reassign" in reassign.message
    assert (reveal.accepted, reveal.code) == (False, "supervisor_only")
    assert (approve.accepted, approve.code) == (False, "approval_needs_supervisor")
    assert (roster.accepted, roster.code) == (False, "supervisor_only")

    refusals = [
        e
        for e in logs
        if e["event"] in ("command_refused", "operation_refused", "supervisor_action_refused")
    ]
    assert {e.get("code") for e in refusals} >= {
        "not_owner",
        "supervisor_only",
        "approval_needs_supervisor",
    }
    assert all(e["agent_id"] == "a1" for e in refusals)
    text = json.dumps([dict(e) for e in logs], ensure_ascii=False, default=str)
    for personal in ("小王", "李娜", "孙主管"):  # the customer's nick, agents' names
        assert personal not in text


async def test_no_password_or_token_is_kept_in_logs_tables_or_dead_letters(
    settings: Settings, db: Pool, clock: FixedClock, channel: AbstractChannel
) -> None:
    async with captured_logs("debug") as logs:
        good = await sign_in(settings, "a1", PASSWORD)
        await sign_in(settings, "a1", PASSWORD + "-wrong")
        assert good.token
        # A sign-in the desk cannot read (a blank agent id) is dead-lettered: without its
        # password, which is in the header only.
        envelope = Envelope.wrap(SignIn(agent_id="a1"), producer="test")
        body = json.loads(envelope.model_dump_json())
        body["payload"]["agent_id"] = ""
        exchange = await channel.get_exchange(EXCHANGE)
        message = amqp_message(
            envelope, body=json.dumps(body).encode(), headers={AUTHORIZATION: PASSWORD}
        )
        await exchange.publish(message, routing_key="desk")

        async def dead() -> bool:
            return await depth(channel, dead_letter_queue("desk")) > 0

        await wait_until(dead, what=f"the invalid sign-in dead-lettered {logs}")
    [letter] = await take_all(channel, dead_letter_queue("desk"))
    assert AUTHORIZATION not in (letter.headers or {})
    assert PASSWORD not in json.dumps(letter.headers or {}, default=str)
    assert PASSWORD.encode() not in letter.body

    text = json.dumps([dict(e) for e in logs], default=str)
    assert PASSWORD not in text and good.token not in text
    tables = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    for row in tables:
        dump = await db.fetchval(
            f"SELECT coalesce(string_agg(t::text, chr(10)), '') FROM \"{row['table_name']}\" t"
        )
        assert PASSWORD not in dump and good.token not in dump, row["table_name"]


async def test_login_keeps_the_session_and_logout_ends_it(
    settings: Settings, db: Pool, clock: FixedClock, cli: Cli, tmp_path: Path
) -> None:
    tid = await new_ticket(settings, db, "cli-1")
    secret = tmp_path / "password"
    secret.write_text("New-Password-99\n")
    env = {"TICKETQ_SESSION_FILE": str(tmp_path / "mine" / "session")}

    assert (await cli("agent", "password", "a1", "--password-file", str(secret))).exit_code == 0
    short = tmp_path / "short"
    short.write_text("short\n")
    weak = await cli("agent", "password", "a1", "--password-file", str(short))
    assert weak.exit_code == 1 and "weak_password" in weak.stderr

    before = await cli("reply", tid, "您好", "--as", "a1", env=env)
    assert before.exit_code == 1 and "not signed in as a1" in before.stderr
    wrong = await cli("login", "--as", "a1", env={**env, "TICKETQ_PASSWORD": PASSWORD})
    assert wrong.exit_code == 1 and "bad_credentials" in wrong.stderr  # the old one: replaced

    login = await cli("login", "--as", "a1", "--password-file", str(secret), "--json", env=env)
    assert login.exit_code == 0, login
    assert "token" not in login.json() and login.json()["agent_id"] == "a1"
    assert "New-Password-99" not in login.output
    session_file = Path(env["TICKETQ_SESSION_FILE"])
    assert stat.S_IMODE(os.stat(session_file).st_mode) == 0o600
    token = kept_sessions(session_file)["a1"]["token"]
    assert token not in login.output

    replied = await cli("reply", tid, "您好,我来处理", env=env)  # no --as: the one signed in
    assert replied.exit_code == 0, replied
    claimed = await cli("reply", tid, "您好", "--as", "s1", env=env)  # not signed in as s1
    assert claimed.exit_code == 1 and "not signed in as s1" in claimed.stderr

    assert (await cli("logout", env=env)).exit_code == 0
    assert "a1" not in kept_sessions(session_file)
    after = await send_command(
        settings,
        TicketCommand(ticket_id=tid, actor_id="a1", args=ReplyArgs(text="您好")),
        token=token,
    )
    assert after.code == "session_revoked"

    await cli("login", "--as", "a1", "--password-file", str(secret), env=env)
    revoked = await cli("agent", "revoke", "a1")
    assert revoked.exit_code == 0 and "1 session of a1 revoked" in revoked.stdout
    refused = await cli("reply", tid, "您好", env=env)
    assert refused.exit_code == 1 and "session_revoked" in refused.output


def kept_sessions(path: Path) -> dict[str, dict[str, str]]:
    sessions: dict[str, dict[str, str]] = json.loads(path.read_text())["agents"]
    return sessions
