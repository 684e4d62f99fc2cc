"""The workbench's only way to change anything: the CLI's own commands over AMQP request/reply
(`shared.cli.commands`), carrying the signed-in agent's session token, so that every rule is
enforced by the workers and never by the web."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.cli.commands import send_command
from shared.config import Settings
from shared.messaging.rpc import Unreachable
from shared.tickets.contracts import CommandReply, OnTicket


@dataclass(frozen=True)
class SignedIn:
    """A sign-in's answer as the web keeps it (the token only in the session cookie)."""

    accepted: bool
    code: str | None
    message: str
    agent_id: str
    token: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Gateway:
    settings: Settings
    timeout: float = 10.0

    async def sign_in(self, agent_id: str, password: str) -> SignedIn:
        raise NotImplementedError

    async def sign_out(self, token: str | None) -> None:
        raise NotImplementedError

    async def send(self, command: OnTicket, token: str | None) -> CommandReply:
        """Send `command`; a broker away or no answer in time is a refusal `no_answer`."""
        try:
            return await send_command(self.settings, command, timeout=self.timeout)
        except Unreachable as exc:
            return CommandReply(
                ticket_id=command.ticket_id, accepted=False, code="no_answer", message=str(exc)
            )
