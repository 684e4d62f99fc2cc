"""`ticketq setup`: the admin step, run once per deployment (and again after an upgrade).

With the admin's credentials (`TICKETQ_ADMIN_AMQP_URL` / `TICKETQ_ADMIN_DATABASE_URL`, else
the shared `TICKETQ_AMQP_URL` / `TICKETQ_DATABASE_URL`) it creates each principal's PostgreSQL
role and RabbitMQ user from the URLs the principal itself is given (`TICKETQ_<NAME>_AMQP_URL`,
`TICKETQ_<NAME>_DATABASE_URL`: one source for a password, never code), runs the migrations as
the migration role (`TICKETQ_MIGRATOR_DATABASE_URL`), grants each role its tables, declares the
topology once and gives each user its permissions (`shared.setup.grants`). A principal with no
URL set is skipped (it then shares the admin's credentials, as before setup existed).
Idempotent: run twice, the same roles, users, grants and topology.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import asyncpg
import structlog

from services.catalogue import CATALOGUE
from shared.config import Settings
from shared.db import migrate
from shared.setup import broker, database
from shared.setup.grants import BROKER, MIGRATOR, PRINCIPALS, TABLES

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Credentials:
    """The URLs each principal was given, by principal."""

    amqp: dict[str, str] = field(default_factory=dict)
    database: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env

        def url(name: str, kind: str) -> str | None:
            return env.get(f"TICKETQ_{name.upper()}_{kind}_URL") or None

        return cls(
            amqp={n: u for n in BROKER if (u := url(n, "AMQP"))},
            database={n: u for n in (MIGRATOR, *TABLES) if (u := url(n, "DATABASE"))},
        )


def broker_admin(env: Mapping[str, str] | None = None) -> broker.BrokerAdmin | None:
    """How users are made: the management API if its URL is set, else rabbitmqctl."""
    env = os.environ if env is None else env
    if url := env.get("TICKETQ_ADMIN_MANAGEMENT_URL"):
        return broker.ManagementApi(url)
    if command := env.get("TICKETQ_RABBITMQCTL"):
        return broker.RabbitmqCtl(command)
    return None


async def setup_database(admin_url: str, credentials: Credentials) -> list[str]:
    """Roles, migrations as the migration role, grants; the migrations applied."""
    roles = {name: database.login_of(url)[0] for name, url in credentials.database.items()}
    migrator_url = credentials.database.get(MIGRATOR)
    conn = await asyncpg.connect(admin_url)
    try:
        for url in credentials.database.values():
            await database.ensure_role(conn, *database.login_of(url))
        if migrator_url:
            await database.hand_schema_to(conn, roles[MIGRATOR])
    finally:
        await conn.close()
    applied = await migrate(migrator_url or admin_url)
    conn = await asyncpg.connect(admin_url)
    try:
        if migrator_url:
            await conn.execute(f'SET ROLE "{roles[MIGRATOR]}"')  # grants come from the owner
        await database.grant(conn, {n: r for n, r in roles.items() if n != MIGRATOR})
    finally:
        await conn.close()
    return applied


async def setup_broker(
    admin: Settings, credentials: Credentials, users: broker.BrokerAdmin | None
) -> None:
    connection = await broker.connect_admin(admin)
    try:
        await broker.declare(connection, admin, list(CATALOGUE.queue_names))
    finally:
        await connection.close()
    if not credentials.amqp:
        return
    if users is None:
        raise RuntimeError(
            "no way to create broker users: set TICKETQ_ADMIN_MANAGEMENT_URL (the management "
            "API) or TICKETQ_RABBITMQCTL (on the broker's host)"
        )
    logins = {name: broker.Login.of(url) for name, url in credentials.amqp.items()}
    await users.import_definitions(broker.definitions(logins))


async def setup(
    admin: Settings, credentials: Credentials, users: broker.BrokerAdmin | None
) -> list[str]:
    """Everything, database first (a worker that finds its queue also finds its tables)."""
    applied = await setup_database(admin.database_url, credentials)
    await setup_broker(admin, credentials, users)
    done = [f"migrations applied: {', '.join(applied) or 'none (up to date)'}"]
    for name in (*PRINCIPALS, MIGRATOR):
        has = [
            k
            for k, urls in (("broker", credentials.amqp), ("db", credentials.database))
            if name in urls
        ]
        done.append(f"{name}: {' + '.join(has) if has else 'no credentials set (skipped)'}")
    log.info("setup_done", principals=sorted({*credentials.amqp, *credentials.database}))
    return done
