"""Named crash points for tests that kill a worker at an exact step.

`TICKETQ_FAILPOINTS=after_commit` makes the process SIGKILL itself when it reaches
`failpoint("after_commit")`: no cleanup, no ack, as if the machine died there.
Unset in production, each call is one set lookup.
"""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(filter(None, os.environ.get("TICKETQ_FAILPOINTS", "").split(",")))


def failpoint(name: str) -> None:
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
