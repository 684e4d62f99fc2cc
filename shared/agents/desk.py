"""The roster's commands, applied by the desk workers in the runtime's transaction."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from shared.agents.contracts import LoadRoster, RosterReply, SetPresence
from shared.agents.roster import SHOP_TIMEZONE, Roster, RosterError
from shared.agents.store import RosterRefused, apply_roster, set_online
from shared.messaging.envelope import Contract
from shared.messaging.runtime import Handler, Incoming, Outcome, Transaction

log = structlog.get_logger(__name__)


async def load_roster(tx: Transaction, msg: Incoming[LoadRoster]) -> Outcome:
    asked = msg.payload
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
    asked = msg.payload
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
