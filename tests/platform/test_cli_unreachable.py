"""A command that cannot read its file or reach its server says so in one line on stderr and
exits non-zero (1 refused, 3 unreachable), never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tcp_proxy import free_port

NOWHERE = f"127.0.0.1:{free_port()}"  # nothing listens there


def ticketq(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (("publish", "/nonexistent.json"), {}, 1, "/nonexistent.json: cannot read it"),
        (
            ("db", "migrate"),
            {"TICKETQ_DATABASE_URL": f"postgresql://ticketq:ticketq@{NOWHERE}/ticketq"},
            3,
            f"cannot reach the database at {NOWHERE}/ticketq",
        ),
        (
            ("publish", str(Path(__file__).parents[2] / "shared/demo/tickets.json")),
            {"TICKETQ_AMQP_URL": f"amqp://ticketq:ticketq@{NOWHERE}/ticketq"},
            3,
            f"cannot reach the broker at {NOWHERE}/ticketq",
        ),
    ],
)
def test_a_command_that_cannot_go_on_says_why_in_one_line(
    args: tuple[str, ...], env: dict[str, str], code: int, says: str
) -> None:
    done = ticketq(*args, **env)
    assert done.returncode == code, done.stderr
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "ticketq:ticketq" not in done.stderr, "no password in the message"
