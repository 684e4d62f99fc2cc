"""The roster's messages: supervisors and ops change it through the desk worker (SPEC §3), so
nobody needs the database's credentials to do it."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from shared.messaging.envelope import Contract


class LoadRoster(Contract):
    """Agents, roles and shifts from a roster file, added or updated in one transaction."""

    TYPE: ClassVar[str] = "roster.load"

    roster: dict[str, Any] = Field(
        description="The roster file's mapping (`agents:`, optional `shifts:`), checked again "
        "by the worker"
    )
    sets_online: list[str] = Field(
        default_factory=list, description="Agents whose `online` the file sets"
    )
    replace: bool = Field(False, description="Remove the agents the file does not name")
    requested_by: str = Field(min_length=1, max_length=100, description="Who loads it")


class SetPresence(Contract):
    """An agent comes online or goes offline: auto-assignment follows it."""

    TYPE: ClassVar[str] = "agent.presence"

    agent_id: str = Field(min_length=1, max_length=100)
    online: bool
    requested_by: str = Field(min_length=1, max_length=100)


class RosterReply(Contract):
    """Done, with what changed; or refused, with why (nothing changed)."""

    TYPE: ClassVar[str] = "roster.reply"

    accepted: bool
    code: str | None = Field(None, description="invalid_roster, agents_busy, unknown_agent")
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
