"""`ticketq`: run workers, migrate the database, publish tickets, run the demo; and the agent CLI
(roster and presence, reading tickets, acting on them).

Exit codes of the agent CLI (roster, agent, tickets, the ticket actions) and `dlq`: 0 done/accepted,
1 rejected or refused, 2 usage error, 3 broker or database unreachable or no answer in time
(see `shared.cli.output`).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import aiormq
import asyncpg
import typer
import uvloop

from services.catalogue import CATALOGUE
from services.finance.cli import finance_app
from services.flows import load_all
from services.warehouse.cli import warehouse_app
from shared.agents.cli import agent_app, roster_app
from shared.calendar.cli import calendar_app
from shared.cli import output
from shared.config import get_settings
from shared.dependencies import describe
from shared.flows.cli import flows_app
from shared.ops.dlq.cli import dlq_app
from shared.report.cli import report_app
from shared.tickets.cli import register_actions, tickets_app

T = TypeVar("T")

# No locals in tracebacks: they would print personal data (SPEC §10).
app = typer.Typer(
    pretty_exceptions_show_locals=False,
    help="ticketq: a shop's customer-service department over RabbitMQ.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="The PostgreSQL schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(dlq_app, name="dlq")
app.add_typer(roster_app, name="roster")
app.add_typer(agent_app, name="agent")
app.add_typer(tickets_app, name="tickets")
app.add_typer(finance_app, name="finance")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(calendar_app, name="calendar")
app.add_typer(flows_app(load_all), name="flows")
app.add_typer(report_app, name="report")
register_actions(app)


@app.command()
def worker(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(CATALOGUE.services)}")],
) -> None:
    """Run one worker until SIGTERM."""
    if name not in CATALOGUE.services:
        raise typer.BadParameter(f"unknown worker {name!r}; one of {', '.join(CATALOGUE.services)}")
    from shared.bootstrap import run_service

    service = importlib.import_module(f"services.{name}.worker").SERVICE
    # uvloop: the worker spends most of its time in socket I/O (one write per database round
    # trip); libuv's loop does it in C (bench/ratio.py, README "Performance").
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_service(service))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the migrations not applied yet."""
    from shared.db import migrate

    url = get_settings().database_url
    applied = output.run(_reaching(migrate(url), f"the database at {_where(url)}"))
    typer.echo(f"applied: {', '.join(applied)}" if applied else "up to date")


@app.command()
def publish(
    path: Annotated[Path, typer.Argument(help="JSON file: one envelope or a list of them")],
) -> None:
    """Publish envelopes exactly as they are in a file (upstream systems' test tool)."""
    from services.intake.client import publish_raw

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        output.fail(output.Refused(f"{path}: cannot read it: {getattr(exc, 'strerror', exc)}"))
    except json.JSONDecodeError as exc:
        output.fail(output.Refused(f"{path}: not JSON: {exc}"))
    bodies = data if isinstance(data, list) else [data]
    url = get_settings().amqp_url
    output.run(_reaching(publish_raw(url, bodies), f"the broker at {_where(url)}"))
    typer.echo(f"published {len(bodies)}")


async def _reaching(work: Coroutine[Any, Any, T], server: str) -> T:
    """`work`, with a server that cannot be reached (refused, unknown host, timed out, wrong
    password, no such database or vhost) reported as one line and exit code 3. The AMQP
    client's own log record of that failure would be a second line: left out."""
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    try:
        return await work
    except (
        OSError,
        TimeoutError,
        aiormq.exceptions.AMQPConnectionError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidCatalogNameError,
    ) as exc:
        raise output.Unreachable(f"cannot reach {server}: {describe(exc)}") from None


def _where(url: str) -> str:
    """host:port/name of a server URL, without the credentials."""
    return url.rsplit("@", 1)[-1]


@app.command()
def demo(
    keep_running: Annotated[
        bool, typer.Option(help="Leave the five workers running after the demo")
    ] = False,
    log_dir: Annotated[Path, typer.Option(help="Where the workers' logs go")] = Path(".local/demo"),
) -> None:
    """Run the whole system locally on a sample of realistic contacts and show the outcome."""
    from shared.demo import run_demo
    from shared.logging import configure_logging

    configure_logging("warning")
    settings = get_settings()
    typer.echo(
        f"broker {settings.amqp_url.split('@')[-1]}, database "
        f"{settings.database_url.split('@')[-1]}; worker logs in {log_dir}/"
    )
    asyncio.run(run_demo(settings, log_dir=log_dir, keep_running=keep_running, say=typer.echo))


if __name__ == "__main__":
    app()
