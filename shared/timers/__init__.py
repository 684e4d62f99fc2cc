"""Durable timers (issue 10, SPEC §8): rows armed and cancelled in the caller's transaction,
fired exactly once by whichever replica's loop claims them.

    generation = await arm(conn, ticket_id=t, kind="no_response_2m", due_at=due,
                           clock="business", now=tx.now)
    await cancel(conn, ticket_id=t, kind="no_response_2m")
    Service(..., background=(TimerLoop(handlers, database_url=url).run,))

Due times come computed (the business-hours calendar is not this package's business).
"""

from __future__ import annotations

from shared.timers.firing import FireHandler, Firing, record_breach, record_escalation
from shared.timers.loop import TimerLoop
from shared.timers.store import Arming, ClockKind, Timer, arm, arm_all, cancel

__all__ = [
    "Arming",
    "ClockKind",
    "FireHandler",
    "Firing",
    "Timer",
    "TimerLoop",
    "arm",
    "arm_all",
    "cancel",
    "record_breach",
    "record_escalation",
]
