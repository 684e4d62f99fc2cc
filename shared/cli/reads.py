"""The agent CLI's reads: a request signed with the agent's session, answered by a worker from
the read model, masked (`shared.tickets.reads`). The CLI holds no database credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.cli.commands import ask, build
from shared.cli.output import Refused, fail, run
from shared.cli.session import acting_as
from shared.config import get_settings
from shared.tickets.read_requests import ReadReply, ReadRequest

# The views' times come back as ISO text; these keys are made times again for the text output.
# What customers or agents wrote (task data, details, the customer, the order) stays as sent.
_TIMES = frozenset(
    {
        "at",
        "opened_at",
        "updated_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "occurred_at",
        "received_at",
        "due_at",
        "entered_at",
        "deadline",
    }
)
_AS_SENT = frozenset({"data", "detail", "customer", "order", "customer_info", "attachments"})


def revive(value: Any) -> Any:
    """A view as the read model made it: its times (`_TIMES`) as datetimes again."""
    if isinstance(value, list):
        return [revive(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _AS_SENT:
            out[key] = item
        elif key in _TIMES and isinstance(item, str):
            try:
                out[key] = datetime.fromisoformat(item)
            except ValueError:
                out[key] = item
        else:
            out[key] = revive(item)
    return out


def read(
    request: Callable[..., ReadRequest], actor: str | None, *, timeout: float = 10.0, **fields: Any
) -> Any:
    """Ask for a view as the agent signed in as `actor` (or the last one signed in); a refusal
    is printed and exits 1."""
    agent, token = acting_as(actor)
    asked = build(request, actor_id=agent, **fields)
    reply = run(ask(get_settings(), asked, ReadReply, sender=agent, token=token, timeout=timeout))
    if not reply.accepted:
        fail(Refused(reply.message, code=reply.code))
    return revive(reply.data)
