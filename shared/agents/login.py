"""`ticketq login|logout` and `ticketq agent password|revoke` (issue 12).

`login` signs in through a desk worker and keeps the token in the session file
(`shared.cli.session`); `logout` revokes it there. The password comes from a prompt, a file
(`--password-file`, its first line) or `$TICKETQ_PASSWORD` for scripts; it is never echoed,
printed or logged. `agent password` and `agent revoke` are the operators' (they hold the
database's credentials, like `db migrate`): setting a password, and ending every session of an
agent who leaves.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import asyncpg
import typer

from shared.agents.identity import hash_password, password_problem, revoke_agent, set_password
from shared.agents.identity import sign_in as sign_in_request
from shared.agents.identity import sign_out as sign_out_request
from shared.cli.db import DbConnection, database
from shared.cli.output import Refused, emit, fail, run
from shared.cli.session import forget, remember, signed_in
from shared.clock import clock_from_env
from shared.config import get_settings, operator_settings

PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        dir_okay=False,
        help="Read the password from this file's first line (scripts); else "
        "$TICKETQ_PASSWORD, else a prompt",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]


def read_password(file: Path | None, *, confirm: bool = False) -> str:
    """The password from `file`, `$TICKETQ_PASSWORD` or a prompt (not echoed)."""
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            fail(Refused(f"{file}: cannot read the password: {getattr(exc, 'strerror', exc)}"))
        return lines[0] if lines else ""
    if from_env := os.environ.get("TICKETQ_PASSWORD"):
        return from_env
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return password


def login(
    agent_id: Annotated[str, typer.Option("--as", metavar="AGENT", help="Your agent id")],
    password_file: PasswordFileOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1)] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Sign in: the session (a shift long) is kept in a file only you can read, and the
    commands you send carry it."""
    password = read_password(password_file)
    reply = run(sign_in_request(get_settings(), agent_id, password, timeout=timeout))
    if not reply.accepted:
        fail(Refused(reply.message, code=reply.code))
    path = remember(reply)
    shown = reply.model_dump(mode="json", exclude={"token"})
    emit(
        {**shown, "session_file": str(path)},
        as_json=as_json,
        text=lambda: f"{reply.message} (role {reply.role}); session kept in {path}",
    )


def logout(
    agent_id: Annotated[
        str | None,
        typer.Option("--as", metavar="AGENT", help="Who signs out; default: the last signed in"),
    ] = None,
    everywhere: Annotated[
        bool, typer.Option("--everywhere", help="End all your sessions, on every machine")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1)] = 10.0,
) -> None:
    """Sign out: the session is revoked, and forgotten here."""
    try:
        agent, token = signed_in(agent_id)
    except Refused as exc:
        fail(exc)
    reply = run(sign_out_request(get_settings(), token, everywhere=everywhere, timeout=timeout))
    forget(agent)  # revoked or already dead (expired, revoked elsewhere): nothing to keep
    typer.echo(reply.message if reply.accepted else f"signed out here ({reply.message})")


@contextlib.asynccontextmanager
async def operators_database() -> AsyncIterator[DbConnection]:
    """The database as operators reach it (`TICKETQ_OPS_DATABASE_URL` where set, else
    `TICKETQ_DATABASE_URL`): the agents' CLI role may not touch passwords or sessions."""
    try:
        async with database(operator_settings()) as conn:
            yield conn
    except asyncpg.InsufficientPrivilegeError:
        raise Refused(
            "these database credentials may not change passwords or sessions: run this with "
            "the operators' (TICKETQ_OPS_DATABASE_URL)",
            code="not_allowed",
        ) from None


AgentArg = Annotated[str, typer.Argument(metavar="AGENT", help="The agent's roster id")]


def agent_password(agent_id: AgentArg, password_file: PasswordFileOpt = None) -> None:
    """Set an agent's password (operators: straight to the database). Their sessions go on;
    `ticketq agent revoke` ends them."""
    password = read_password(password_file, confirm=True)
    if problem := password_problem(password):
        fail(Refused(problem, code="weak_password"))
    hashed = hash_password(password)

    async def go() -> bool:
        async with operators_database() as conn:
            return await set_password(conn, agent_id, hashed, clock_from_env().now())

    if not run(go()):
        fail(Refused(f"no agent {agent_id!r} on the roster", code="unknown_agent"))
    typer.echo(f"password set for {agent_id}")


def agent_revoke(agent_id: AgentArg) -> None:
    """End every session of an agent (one who leaves, a lost laptop): their next command is
    refused until they sign in again (and, with their password changed, never)."""

    async def go() -> int:
        async with operators_database() as conn:
            return await revoke_agent(conn, agent_id, clock_from_env().now())

    count = run(go())
    typer.echo(f"{count} session{'s' * (count != 1)} of {agent_id} revoked")


def register(app: typer.Typer, agent_app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    agent_app.command("password")(agent_password)
    agent_app.command("revoke")(agent_revoke)
