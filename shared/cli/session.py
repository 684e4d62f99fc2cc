"""Where the CLI keeps its sign-ins: one file, readable by its owner only (0600).

`$TICKETQ_SESSION_FILE`, else `$XDG_CONFIG_HOME/ticketq/session` (`~/.config/...`). It maps
each agent signed in from this account to their token and expiry, and names the last one
signed in: `--as AGENT` picks one, no `--as` means that one. (A desk PC has one agent; a
supervisor's or a demo's may hold several.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shared.agents.contracts import SignInReply
from shared.cli.output import Refused, fail


def session_path() -> Path:
    if explicit := os.environ.get("TICKETQ_SESSION_FILE"):
        return Path(explicit)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "ticketq" / "session"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"agents": {}, "current": None}
    except (OSError, ValueError) as exc:
        raise Refused(f"{path}: cannot read the sign-ins: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("agents"), dict):
        raise Refused(f"{path}: not a ticketq session file; remove it and sign in again")
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace the file at once, created 0600 (never readable by others, not even briefly)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out)
    os.replace(temporary, path)


def remember(reply: SignInReply, path: Path | None = None) -> Path:
    """Keep an accepted sign-in's token; its agent becomes the one without `--as`."""
    assert reply.accepted and reply.token is not None
    path = path or session_path()
    data = _read(path)
    data["agents"][reply.agent_id] = {
        "token": reply.token,
        "expires_at": reply.expires_at.isoformat() if reply.expires_at else None,
        "role": reply.role,
    }
    data["current"] = reply.agent_id
    _write(path, data)
    return path


def forget(agent_id: str, path: Path | None = None) -> None:
    path = path or session_path()
    data = _read(path)
    data["agents"].pop(agent_id, None)
    if data.get("current") == agent_id:
        data["current"] = next(iter(data["agents"]), None)
    _write(path, data)


def signed_in(agent_id: str | None, path: Path | None = None) -> tuple[str, str]:
    """(agent, token) of `agent_id`'s sign-in, or of the current one; Refused if none."""
    path = path or session_path()
    data = _read(path)
    chosen = agent_id or data.get("current")
    entry = data["agents"].get(chosen) if chosen else None
    if chosen is None or not isinstance(entry, dict) or not entry.get("token"):
        who = f" as {chosen}" if chosen else ""
        raise Refused(
            f"not signed in{who}: run `ticketq login --as {chosen or 'AGENT'}` first",
            code="not_signed_in",
        )
    return str(chosen), str(entry["token"])


def acting_as(agent_id: str | None) -> tuple[str, str]:
    """`signed_in` for a command: not signed in is a one-line refusal (exit 1)."""
    try:
        return signed_in(agent_id)
    except Refused as exc:
        fail(exc)


def requester(agent_id: str | None) -> tuple[str, str | None]:
    """Who asks for a roster change: the sign-in of `agent_id` (or the current one) with its
    token; else the name alone (accepted only while setting up, before anyone has a password)."""
    try:
        return signed_in(agent_id)
    except Refused:
        return agent_id or "ops", None
