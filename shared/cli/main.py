"""`ticketq`: run workers, migrate the database, publish tickets, run the demo; and the agent CLI
(roster and presence, reading tickets, acting on them).

Exit codes of the agent CLI (roster, agent, tickets, the ticket actions) and `dlq`: 0 done/accepted,
1 rejected or refused, 2 usage error, 3 broker or database unreachable or no answer in time
(see `shared.cli.output`).
"""

from __future__ import annotations

import asyncio
import gc
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
from shared.agents.login import register as register_sign_in
from shared.calendar.cli import calendar_app
from shared.cli import output
from shared.config import get_settings
from shared.dependencies import describe
from shared.flows.cli import flows_app
from shared.messaging import amqp
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
register_sign_in(app, agent_app)


@app.command()
def worker(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(CATALOGUE.services)}")],
) -> None:
    """Run one worker until SIGTERM."""
    if name not in CATALOGUE.services:
        raise typer.BadParameter(f"unknown worker {name!r}; one of {', '.join(CATALOGUE.services)}")
    from shared.bootstrap import run_service

    service = importlib.import_module(f"services.{name}.worker").SERVICE
    # What was imported (modules, pydantic's schemas) lives as long as the process: frozen out
    # of the collector's way, and young collections made rarer; perf put the collector at 3%
    # of a busy worker's CPU (README "Performance"). uvloop: libuv's loop, in C.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_service(service))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the migrations not applied yet."""
    from shared.db import migrate

    url = get_settings().for_service("migrator").database_url
    applied = output.run(_reaching(migrate(url), f"the database at {_where(url)}"))
    typer.echo(f"applied: {', '.join(applied)}" if applied else "up to date")


@app.command("setup")
def setup_command() -> None:
    """The admin step: each service's role and broker user (from its own URLs), the
    migrations, the grants and the topology (`shared.setup`). Safe to run again."""
    from shared.setup import Credentials, broker_admin, setup

    admin = get_settings().for_service("admin")
    done = output.run(
        _reaching(setup(admin, Credentials.from_env(), broker_admin()), "the servers")
    )
    typer.echo("\n".join(done))


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
    output.run(_reaching(publish_raw(url, bodies), f"the broker at {amqp.where(url)}"))
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
        f"broker {amqp.where(settings.amqp_url)}, database "
        f"{settings.database_url.split('@')[-1]}; worker logs in {log_dir}/"
    )
    asyncio.run(run_demo(settings, log_dir=log_dir, keep_running=keep_running, say=typer.echo))


@app.command()
def web(
    host: Annotated[
        str, typer.Option(envvar="TICKETQ_WEB_HOST", help="Address to listen on")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TICKETQ_WEB_PORT", help="Port to listen on")] = 8080,
) -> None:
    """Run the web workbench (pages for agents, staff and supervisors, live) until stopped."""
    from shared.logging import configure_logging
    from shared.web.server import serve

    settings = get_settings().for_service("web")  # its own credentials, where set
    configure_logging(settings.log_level)
    typer.echo(f"workbench on http://{host}:{port}/")
    serve(settings, host, port)


if __name__ == "__main__":
    app()
