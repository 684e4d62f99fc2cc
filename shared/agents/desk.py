"""The roster's commands, applied by the desk workers in the runtime's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from shared.agents.contracts import LoadRoster, RosterReply, SetPresence
from shared.agents.identity import SessionRefused, acting_agent, setting_up
from shared.agents.roster import SHOP_TIMEZONE, Agent, Roster, RosterError
from shared.agents.store import RosterRefused, apply_roster, set_online
from shared.messaging.envelope import Contract
from shared.messaging.runtime import Handler, Incoming, Outcome, Transaction
from shared.tickets.roles import Role

log = structlog.get_logger(__name__)

SUPERVISOR_ONLY = "supervisor_only"  # the code a reveal's refusal has too


async def _requester(tx: Transaction, msg: Incoming[Any], claimed: str) -> Agent | None:
    """Who asks for a roster change: their session's agent, or None while setting up (nobody
    has a password yet, so nobody could sign in). Raises SessionRefused."""
    if msg.credential is None and await setting_up(tx.conn):
        return None
    session = await acting_agent(tx.conn, msg.credential, claimed, tx.now)
    if session.agent is None:
        raise SessionRefused("unknown_agent", f"no agent {session.agent_id!r} on the roster")
    return session.agent


def _supervisors_only(tx: Transaction, agent: Agent, action: str) -> Outcome | None:
    if Role.SUPERVISOR in agent.roles:
        return None
    log.warning("supervisor_action_refused", action=action, code=SUPERVISOR_ONLY, agent_id=agent.id)
    return _refuse(tx, SUPERVISOR_ONLY, f"only a supervisor may {action}; {agent.id} is not one")


async def load_roster(tx: Transaction, msg: Incoming[LoadRoster]) -> Outcome:
    """Supervisors only (anyone with the broker while setting up)."""
    asked = msg.payload
    try:
        requester = await _requester(tx, msg, asked.requested_by)
    except SessionRefused as exc:
        return _refuse(tx, exc.code, exc.message)
    if requester is not None and (refused := _supervisors_only(tx, requester, "load the roster")):
        return refused
    try:
        roster = Roster.from_mapping(asked.roster)
        if roster.timezone != SHOP_TIMEZONE:
            raise RosterError(f"the services work in {SHOP_TIMEZONE.key}; remove `timezone:`")
        changes = await apply_roster(tx.conn, roster, set(asked.sets_online), replace=asked.replace)
    except RosterError as exc:
        return _refuse(tx, "invalid_roster", str(exc))
    except RosterRefused as exc:
        return _refuse(tx, exc.code, exc.message)
    log.info("roster_loaded", requested_by=asked.requested_by, agents=len(roster.agents))
    tx.reply = RosterReply(
        accepted=True, message=f"loaded {len(roster.agents)} agents", data=changes
    )
    return Outcome("roster_loaded")


async def set_presence(tx: Transaction, msg: Incoming[SetPresence]) -> Outcome:
    """An agent's own presence, or anyone's by a supervisor (anyone's while setting up)."""
    asked = msg.payload
    try:
        requester = await _requester(tx, msg, asked.requested_by)
    except SessionRefused as exc:
        return _refuse(tx, exc.code, exc.message)
    if (
        requester is not None
        and requester.id != asked.agent_id
        and (refused := _supervisors_only(tx, requester, "set another agent's presence"))
    ):
        return refused
    try:
        agent = await set_online(tx.conn, asked.agent_id, asked.online)
    except RosterRefused as exc:
        return _refuse(tx, exc.code, exc.message)
    state = "online" if asked.online else "offline"
    tx.reply = RosterReply(
        accepted=True, message=f"{agent['name']} ({agent['id']}) is now {state}", data=agent
    )
    return Outcome(f"agent_{state}")


def _refuse(tx: Transaction, code: str, message: str) -> Outcome:
    tx.reply = RosterReply(accepted=False, code=code, message=message)
    return Outcome(f"rejected:{code}")


ROSTER_HANDLERS: Mapping[type[Contract], Handler] = {
    LoadRoster: load_roster,
    SetPresence: set_presence,
}
