"""What a fire handler is handed, and the records firings write (breaches, escalations).

A fire handler runs inside the transaction that marks its timer fired: whatever it writes
(effects, `emit`ted messages, breach and escalation rows) commits with that mark or not at all.

Example (the 2-minute no-response rule)::

    async def no_response(firing: Firing) -> None:
        owner = await firing.conn.fetchval(
            "SELECT owner_agent_id FROM tickets WHERE id = $1", firing.timer.ticket_id
        )
        await record_breach(firing, agent_id=owner)
        firing.emit("desk", NotifyAgent(agent_id=owner, text="2 min without a reply"),  # yours
                    ticket_id=firing.timer.ticket_id)

    loop = TimerLoop({"no_response_2m": no_response}, database_url=..., on_commit=relay.notify)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from shared.db import Connection
from shared.messaging.envelope import Contract, Envelope
from shared.timers import metrics
from shared.timers.store import Timer

PRODUCER = "timers"


@dataclass
class Firing:
    """One timer firing: its connection inside the transaction, the timer, the time, the
    messages to publish if it commits, and what to count once it has."""

    conn: Connection
    timer: Timer
    now: datetime
    outbox: list[tuple[str, Envelope]] = field(default_factory=list)
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    def emit(self, queue: str, payload: Contract, *, ticket_id: str | None) -> Envelope:
        """Queue a message for `queue`; it is published only if the firing commits. Its id
        is derived from the timer row, so the same firing always sends the same ids."""
        envelope = Envelope.wrap(
            payload,
            producer=PRODUCER,
            correlation_id=ticket_id,
            causation_id=f"timer:{self.timer.id}",
            message_id=str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"timer:{self.timer.id}:{len(self.outbox)}")
            ),
            sent_at=self.now,
        )
        self.outbox.append((queue, envelope))
        return envelope


FireHandler = Callable[[Firing], Awaitable[None]]


async def record_breach(firing: Firing, *, agent_id: str | None, kind: str | None = None) -> None:
    """A service level missed by `agent_id` (违规): one row per timer firing."""
    timer = firing.timer
    kind = kind or timer.kind
    await firing.conn.execute(
        """INSERT INTO breaches (ticket_id, agent_id, kind, due_at, at, timer_id, generation)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        timer.ticket_id,
        agent_id,
        kind,
        timer.due_at,
        firing.now,
        timer.id,
        timer.generation,
    )
    firing.on_commit.append(metrics.BREACHES.labels(kind).inc)


async def record_escalation(
    firing: Firing, *, to_agent_id: str | None, reason: str, kind: str | None = None
) -> None:
    """The ticket escalated (升级) to a supervisor; None: to the next one on shift."""
    timer = firing.timer
    kind = kind or timer.kind
    await firing.conn.execute(
        """INSERT INTO escalations (ticket_id, to_agent_id, kind, reason, at, timer_id, generation)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        timer.ticket_id,
        to_agent_id,
        kind,
        reason,
        firing.now,
        timer.id,
        timer.generation,
    )
    firing.on_commit.append(metrics.ESCALATIONS.labels(kind).inc)
