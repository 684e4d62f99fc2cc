"""The demo's agents sign in (issue 12) as agents do, with a dev password made for this run.

The password is random, kept in a file only its owner reads (`LOG_DIR/dev-password`), never
printed; the demo's sessions go to `LOG_DIR/session`, not to the user's own session file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from shared.agents.identity import hash_password, set_password, setting_up, sign_in
from shared.cli.session import remember
from shared.config import Settings
from shared.db import Pool

SUPERVISOR = "zhaomin"  # the sample roster's supervisor: loads the roster once it can sign in


def roster_ids(roster: Path) -> list[str]:
    return [str(a["id"]) for a in yaml.safe_load(roster.read_text(encoding="utf-8"))["agents"]]


def dev_password(log_dir: Path) -> tuple[str, Path]:
    """A fresh password for this run, in a 0600 file (for `ticketq login --password-file`)."""
    password = secrets.token_urlsafe(18)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "dev-password"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
    return password, path


async def set_dev_passwords(pool: Pool, agent_ids: Iterable[str], password: str) -> list[str]:
    """Give the demo's agents on the roster the dev password (operators' set-up, straight to
    the database, like `ticketq agent password`); who got it."""
    hashed = hash_password(password)
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        return [a for a in agent_ids if await set_password(conn, a, hashed, now)]


async def sign_in_all(
    settings: Settings,
    agent_ids: Iterable[str],
    password: str,
    session_file: Path,
    say: Callable[[str], None],
) -> None:
    """Sign each agent in through a desk worker; their sessions go to `session_file`."""
    signed = []
    for agent_id in agent_ids:
        reply = await sign_in(settings, agent_id, password)
        if not reply.accepted:
            raise RuntimeError(f"{agent_id} could not sign in: {reply.code}: {reply.message}")
        remember(reply, session_file)
        signed.append(agent_id)
    say(f"signed in (dev password in the demo's log dir): {', '.join(signed)}")


async def roster_needs_supervisor(pool: Pool) -> bool:
    """Some agent has a password already: a roster change needs a supervisor's session."""
    async with pool.acquire() as conn:
        return not await setting_up(conn)
