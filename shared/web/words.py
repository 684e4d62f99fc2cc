"""A refused command in words for the person who tried it: the worker's code and message
become a sentence about this ticket (`not_first_handler` -> "Only the first handler, 李娜
(a1), may close this ticket")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What each command is, as the end of "may ... this ticket".
VERBS = {
    "close": "close",
    "resolve": "resolve",
    "record_result": "record a result on",
    "reassign_first_handler": "reassign",
    "reply": "reply on",
    "hand_off": "hand off",
    "step": "move",
    "claim": "claim",
}


def _who(ref: Mapping[str, Any] | None) -> str:
    return "nobody yet" if ref is None else f"{ref['name']} ({ref['id']})"


def refusal_text(
    code: str | None, message: str, command: str, ticket: Mapping[str, Any] | None
) -> str:
    """The sentence for a refusal of `command` on `ticket` (its read-model view, if known);
    the worker's own message follows it as the detail."""
    verb = VERBS.get(command, command.replace("_", " "))
    owner = (ticket or {}).get("owner") or {}
    template = LEADS.get(code or "")
    if template is None:
        return f"Refused ({code or 'rejected'}): {message}"
    lead = template.format(
        verb=verb,
        first_verb=verb.split()[0],
        first_handler=_who((ticket or {}).get("first_handler")),
        owner=_who(owner.get("agent")),
        role=owner.get("role", "?"),
    )
    return f"{lead}. ({code}: {message})"


LEADS = {
    "not_first_handler": "Only the first handler, {first_handler}, may {verb} this ticket",
    "not_owner": "Only the ticket's owner, {owner} ({role}), may {verb} this ticket",
    "version_conflict": "The ticket changed since you opened it: look again, then retry",
    "handoffs_pending": "Tasks handed off are still waiting for their results",
    "invalid_transition": "This ticket cannot {first_verb} in its status now",
    "not_allowed_by_flow": "The flow does not allow that move at this step",
    "unknown_agent": "That agent is not on the roster",
    "unknown_ticket": "There is no such ticket",
    "invalid_command": "The command was not valid for this ticket",
    "not_signed_in": "You are not signed in (or your session ended): sign in again",
    "session_expired": "Your sign-in has expired: sign in again",
    "session_revoked": "Your session was signed out: sign in again",
    "actor_mismatch": "The command was not sent as the agent signed in",
    "no_answer": "No worker answered in time: nothing is known to have changed",
}
