"""The roster's messages: supervisors and ops change it through the desk worker (SPEC §3), so
nobody needs the database's credentials to do it; and signing in and out (issue 12)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import AwareDatetime, Field

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


class SignIn(Contract):
    """An agent signs in (issue 12). The password travels in the message's `authorization`
    header, never in the body: a body is kept (dead-letter queues, stored answers), the header is
    dropped wherever a message is copied (`shared.messaging.topology.copy_message`)."""

    TYPE: ClassVar[str] = "agent.sign_in"

    agent_id: str = Field(min_length=1, max_length=100, description="The roster id")


class SignOut(Contract):
    """An agent signs out: the session whose token is in the `authorization` header is revoked
    (with `everywhere`, all of the agent's sessions)."""

    TYPE: ClassVar[str] = "agent.sign_out"

    everywhere: bool = Field(False, description="Revoke all the agent's sessions")


class SignInReply(Contract):
    """A session, or why not. `token` is in the first answer only: a re-sent sign-in is told,
    not given the token again (stored answers never hold it)."""

    TYPE: ClassVar[str] = "agent.sign_in_reply"

    accepted: bool
    code: str | None = Field(
        None, description="bad_credentials, too_many_attempts, not_signed_in, session_expired"
    )
    message: str
    token: str | None = Field(None, description="The session's bearer token")
    expires_at: AwareDatetime | None = None
    agent_id: str
    role: str | None = Field(None, description="supervisor, or the agent's first role")
    roles: list[str] = Field(default_factory=list)
    supervisor: bool = False
