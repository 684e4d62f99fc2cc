"""Agents who sign in (issue 12): passwords, sessions, and who a command comes from.

An agent's password is kept as an argon2id hash (`agent_credentials`); signing in
(`agent.sign_in`, request/reply on the `desk` queue) checks it and answers with a random
bearer token, of which only the SHA-256 is kept (`agent_sessions`, with the agent, roles at
sign-in, expiry and a revoked flag). Every agent's command carries the token in its AMQP
`authorization` header; the worker that applies it takes the acting agent from the session
(`acting_agent`), never from the name the command claims. Secrets travel in that header only:
bodies are kept (dead-letter queues, stored answers), the header is dropped wherever a message
is copied, and neither is ever logged.

Failed sign-ins are counted per agent id in PostgreSQL (`sign_in_failures`), so every replica
agrees: past `Settings.sign_in_failures` in `sign_in_window_minutes` the id is refused until
the window has moved on (time read from the worker's clock).

Set-up: until some agent has a password nobody can sign in, so roster and presence commands
are taken without a session then (`setting_up`); ticket commands never are.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.agents.contracts import SignIn, SignInReply, SignOut
from shared.agents.roster import Agent, agent_from_row
from shared.config import Settings, get_settings
from shared.db import Connection, xact_lock
from shared.messaging.envelope import Contract
from shared.messaging.rpc import request
from shared.messaging.runtime import Handler, Incoming, Outcome, Transaction
from shared.messaging.topology import AUTHORIZATION
from shared.tickets.roles import Role

log = structlog.get_logger(__name__)

DESK_QUEUE = "desk"  # where sign-ins go: the queue services.catalogue names for them
MIN_PASSWORD = 8

# Refusal codes of a command whose session does not hold.
NOT_SIGNED_IN = "not_signed_in"
SESSION_EXPIRED = "session_expired"
SESSION_REVOKED = "session_revoked"
ACTOR_MISMATCH = "actor_mismatch"
# Refusal codes of a sign-in.
BAD_CREDENTIALS = "bad_credentials"
TOO_MANY_ATTEMPTS = "too_many_attempts"


# --------------------------------------------------------------------------------------------
# Passwords and tokens (pure)

_hasher = PasswordHasher()  # argon2id, the library's defaults (RFC 9106's second choice)
# Each hash takes 64 MiB for a few tens of ms: a burst of sign-ins (a shift starting) queues
# here rather than taking a worker's memory.
_hashing = threading.BoundedSemaphore(2)


def hash_password(password: str) -> str:
    """The argon2id hash (salt and parameters encoded in it) to keep for `password`."""
    with _hashing:
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from (constant time)."""
    try:
        with _hashing:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with weaker parameters than today's: hash the password again."""
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """Why `password` cannot be an agent's, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a password has at least {MIN_PASSWORD} characters"
    if password != password.strip():
        return "a password neither starts nor ends with white space"
    return None


def new_token() -> str:
    """A session's bearer token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is kept of a token: its SHA-256, hex (a token is random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


@cache
def _decoy_hash() -> str:
    # Checked against when the agent has no password, so the answer takes as long either way.
    return hash_password(new_token())


# --------------------------------------------------------------------------------------------
# The store


@dataclass(frozen=True)
class Session:
    """A signed-in agent: who, their roles at sign-in, until when; and the roster's agent now
    (None once off the roster), read in the same statement."""

    agent_id: str
    roles: tuple[str, ...]
    expires_at: datetime
    agent: Agent | None = None


class SessionRefused(Exception):
    """The command's session does not hold (or is not the claimed agent's): `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def set_password(conn: Connection, agent_id: str, password_hash: str, at: datetime) -> bool:
    """Keep `password_hash` as the agent's password (replacing any); False if no such agent."""
    done = await conn.fetchval(
        """INSERT INTO agent_credentials (agent_id, password_hash, set_at)
           SELECT id, $2, $3 FROM agents WHERE id = $1
           ON CONFLICT (agent_id) DO UPDATE
              SET password_hash = excluded.password_hash, set_at = excluded.set_at
           RETURNING true""",
        agent_id,
        password_hash,
        at,
    )
    return bool(done)


async def setting_up(conn: Connection) -> bool:
    """No agent has a password yet: nobody could sign in (see the module's docstring)."""
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM agent_credentials)")


async def open_session(
    conn: Connection, agent_id: str, roles: list[str], at: datetime, ttl: timedelta
) -> tuple[str, datetime]:
    """A new session for the agent: (its token, when it expires). Only the hash is kept."""
    token = new_token()
    expires_at = at + ttl
    await conn.execute(
        """INSERT INTO agent_sessions (token_hash, agent_id, roles, issued_at, expires_at)
           VALUES ($1, $2, $3, $4, $5)""",
        token_hash(token),
        agent_id,
        roles,
        at,
        expires_at,
    )
    return token, expires_at


async def session_of(conn: Connection, token: str | None, now: datetime) -> Session:
    """The live session `token` opened; raises SessionRefused saying why not."""
    if not token:
        raise SessionRefused(NOT_SIGNED_IN, "not signed in: sign in first (ticketq login)")
    row = await conn.fetchrow(
        """SELECT s.agent_id, s.roles AS session_roles, s.expires_at, s.revoked,
                  a.id, a.name, a.roles, a.shifts, a.online
             FROM agent_sessions s LEFT JOIN agents a ON a.id = s.agent_id
            WHERE s.token_hash = $1""",
        token_hash(token),
    )
    if row is None:
        raise SessionRefused(NOT_SIGNED_IN, "unknown session: sign in again (ticketq login)")
    if row["revoked"]:
        raise SessionRefused(SESSION_REVOKED, "this session was revoked: sign in again")
    if row["expires_at"] <= now:
        raise SessionRefused(SESSION_EXPIRED, "this session has expired: sign in again")
    agent = agent_from_row(dict(row)) if row["id"] is not None else None
    return Session(row["agent_id"], tuple(row["session_roles"]), row["expires_at"], agent)


async def acting_agent(
    conn: Connection, token: str | None, claimed: str | None, now: datetime
) -> Session:
    """Who a command comes from: its session's agent. A command that names another agent
    (`actor_id`, `requested_by`) is refused rather than applied as either."""
    session = await session_of(conn, token, now)
    if claimed is not None and claimed != session.agent_id:
        log.warning("actor_mismatch", agent_id=session.agent_id, claimed=claimed)
        raise SessionRefused(
            ACTOR_MISMATCH,
            f"the command names {claimed!r} but is signed by {session.agent_id!r}'s session",
        )
    return session


async def revoke_session(conn: Connection, token: str, at: datetime) -> str | None:
    """Revoke the session `token` opened; its agent, or None if there was no live one."""
    agent_id: str | None = await conn.fetchval(
        """UPDATE agent_sessions SET revoked = true, revoked_at = $2
            WHERE token_hash = $1 AND NOT revoked RETURNING agent_id""",
        token_hash(token),
        at,
    )
    return agent_id


async def revoke_agent(conn: Connection, agent_id: str, at: datetime) -> int:
    """Revoke every live session of the agent (one who leaves, a lost laptop); how many."""
    rows = await conn.fetch(
        """UPDATE agent_sessions SET revoked = true, revoked_at = $2
            WHERE agent_id = $1 AND NOT revoked AND expires_at > $2 RETURNING 1""",
        agent_id,
        at,
    )
    return len(rows)


async def recent_failures(conn: Connection, agent_id: str, since: datetime) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM sign_in_failures WHERE agent_id = $1 AND at > $2",
            agent_id,
            since,
        )
    )


# --------------------------------------------------------------------------------------------
# The desk's handlers


def _limits() -> tuple[timedelta, int, timedelta]:
    settings = get_settings()
    return (
        timedelta(hours=settings.session_hours),
        settings.sign_in_failures,
        timedelta(minutes=settings.sign_in_window_minutes),
    )


def _role_of(roles: list[str]) -> str | None:
    return Role.SUPERVISOR.value if Role.SUPERVISOR in roles else (roles[0] if roles else None)


async def handle_sign_in(tx: Transaction, msg: Incoming[SignIn]) -> Outcome:
    """Check the password (in the `authorization` header) and open a session, or say why not.

    Sign-ins of one agent id are serialised, so concurrent guesses are all counted."""
    agent_id = msg.payload.agent_id
    ttl, allowed, window = _limits()
    await xact_lock(tx.conn, f"sign_in:{agent_id}")
    if await recent_failures(tx.conn, agent_id, tx.now - window) >= allowed:
        log.warning("sign_in_refused", agent_id=agent_id, code=TOO_MANY_ATTEMPTS)
        return _sign_in_refused(
            tx,
            agent_id,
            TOO_MANY_ATTEMPTS,
            f"too many failed sign-ins for {agent_id}: try again in "
            f"{window.total_seconds() / 60:g} minutes",
        )
    row = await tx.conn.fetchrow(
        """SELECT c.password_hash, a.roles FROM agent_credentials c
             JOIN agents a ON a.id = c.agent_id WHERE c.agent_id = $1""",
        agent_id,
    )
    stored = row["password_hash"] if row else _decoy_hash()
    password = msg.credential or ""
    good = await asyncio.to_thread(verify_password, stored, password) and row is not None
    if not good:
        await tx.conn.execute(
            "INSERT INTO sign_in_failures (agent_id, at) VALUES ($1, $2)", agent_id, tx.now
        )
        log.warning("sign_in_refused", agent_id=agent_id, code=BAD_CREDENTIALS)
        return _sign_in_refused(tx, agent_id, BAD_CREDENTIALS, "unknown agent or wrong password")
    assert row is not None
    if needs_rehash(stored):  # made with weaker parameters than today's
        rehashed = await asyncio.to_thread(hash_password, password)
        await tx.conn.execute(
            "UPDATE agent_credentials SET password_hash = $2 WHERE agent_id = $1",
            agent_id,
            rehashed,
        )
    await tx.conn.execute("DELETE FROM sign_in_failures WHERE agent_id = $1", agent_id)
    roles = list(row["roles"])
    token, expires_at = await open_session(tx.conn, agent_id, roles, tx.now, ttl)
    answer: dict[str, Any] = {
        "accepted": True,
        "agent_id": agent_id,
        "expires_at": expires_at,
        "role": _role_of(roles),
        "roles": roles,
        "supervisor": Role.SUPERVISOR in roles,
    }
    tx.reply = SignInReply(
        **answer, token=token, message=f"signed in as {agent_id} until {expires_at:%Y-%m-%d %H:%M}Z"
    )
    # A re-sent sign-in is told, never given the token again: stored answers are in a table.
    tx.kept_reply = SignInReply(
        **answer, message="this sign-in was answered already; sign in again for a token"
    )
    log.info("signed_in", agent_id=agent_id, expires_at=expires_at.isoformat())
    return Outcome("signed_in")


def _sign_in_refused(tx: Transaction, agent_id: str, code: str, message: str) -> Outcome:
    tx.reply = SignInReply(accepted=False, code=code, message=message, agent_id=agent_id)
    return Outcome(f"rejected:{code}")


async def handle_sign_out(tx: Transaction, msg: Incoming[SignOut]) -> Outcome:
    """Revoke the session the message is signed with (or all the agent's sessions)."""
    try:
        session = await session_of(tx.conn, msg.credential, tx.now)
    except SessionRefused as exc:
        tx.reply = SignInReply(accepted=False, code=exc.code, message=exc.message, agent_id="")
        return Outcome(f"rejected:{exc.code}")
    if msg.payload.everywhere:
        count = await revoke_agent(tx.conn, session.agent_id, tx.now)
    else:
        count = 1 if await revoke_session(tx.conn, msg.credential or "", tx.now) else 0
    tx.reply = SignInReply(
        accepted=True,
        message=f"signed out {session.agent_id} ({count} session{'s' * (count != 1)} revoked)",
        agent_id=session.agent_id,
    )
    log.info("signed_out", agent_id=session.agent_id, sessions=count)
    return Outcome("signed_out")


SESSION_HANDLERS: Mapping[type[Contract], Handler] = {
    SignIn: handle_sign_in,
    SignOut: handle_sign_out,
}


# --------------------------------------------------------------------------------------------
# The client side


async def sign_in(
    settings: Settings,
    agent_id: str,
    password: str,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - the whole exchange's budget, connect included
) -> SignInReply:
    """Sign in through a desk worker (request/reply): the reply holds the token if accepted.
    Raises `shared.cli.output.Unreachable` when no answer came."""
    return await request(
        settings,
        DESK_QUEUE,
        SignIn(agent_id=agent_id),
        SignInReply,
        correlation_id=None,
        sender=agent_id,
        timeout=timeout,
        headers={AUTHORIZATION: password},
    )


async def sign_out(
    settings: Settings,
    token: str,
    *,
    everywhere: bool = False,
    timeout: float = 10.0,  # noqa: ASYNC109 - the whole exchange's budget, connect included
) -> SignInReply:
    """Revoke the session `token` opened (with `everywhere`, all its agent's sessions)."""
    return await request(
        settings,
        DESK_QUEUE,
        SignOut(everywhere=everywhere),
        SignInReply,
        correlation_id=None,
        sender="sign-out",
        timeout=timeout,
        headers={AUTHORIZATION: token},
    )
