"""`ticketq dlq`: inspect, replay and discard dead-lettered messages over AMQP alone."""

from __future__ import annotations

import typer

dlq_app = typer.Typer(help="Dead-letter queues: list, show, group, replay, discard, audit.")
