"""The workbench's only way to change anything: the CLI's own commands over AMQP request/reply
(`shared.cli.commands`), carrying the signed-in agent's session token, so that every rule is
enforced by the workers and never by the web."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from shared.agents import identity
from shared.agents.contracts import SignInReply
from shared.cli.commands import send_command
from shared.config import Settings
from shared.messaging.rpc import Unreachable
from shared.tickets.contracts import CommandReply, OnTicket

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Gateway:
    settings: Settings
    timeout: float = 10.0

    async def sign_in(self, agent_id: str, password: str) -> SignInReply:
        """The identity service's answer (`shared.agents.identity.sign_in`); no answer in
        time is a refusal `no_answer`."""
        try:
            return await identity.sign_in(self.settings, agent_id, password, timeout=self.timeout)
        except Unreachable as exc:
            return SignInReply(
                accepted=False, code="no_answer", message=str(exc), agent_id=agent_id
            )

    async def sign_out(self, token: str | None) -> None:
        """Revoke the session; signing out of the web goes on if the worker is away (the
        cookie is cleared either way, the session then ends at its expiry)."""
        if not token:
            return
        try:
            await identity.sign_out(self.settings, token, timeout=self.timeout)
        except Unreachable as exc:
            log.warning("web_sign_out_unanswered", error=str(exc))

    async def send(self, command: OnTicket, token: str | None) -> CommandReply:
        """Send `command` with the session's token; a broker away or no answer in time is a
        refusal `no_answer`. Without a token the worker answers `not_signed_in`."""
        try:
            return await send_command(
                self.settings, command, token=token or "", timeout=self.timeout
            )
        except Unreachable as exc:
            return CommandReply(
                ticket_id=command.ticket_id, accepted=False, code="no_answer", message=str(exc)
            )
