"""A deployment set up by `ticketq setup` on this session's vhost and a database of the test's
own: each principal with its own broker user and database role.

Roles and users are cluster-wide: theirs carry this session's id (parallel sessions never
share one) and are removed when the session ends. The database is migrated and granted once
per session (a template), each test gets a copy, as in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest

from services.catalogue import CATALOGUE
from shared.config import Settings
from shared.messaging import topology as messaging
from shared.setup import Credentials, broker_admin, setup_broker, setup_database
from shared.setup.grants import BROKER, MIGRATOR, TABLES
from tests.conftest import BASE, RUN_ID, _admin, _rabbitmqctl, _with_path


def _with_login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@dataclass(frozen=True)
class Logins:
    """This session's user and password for each principal (and the migrator)."""

    users: dict[str, str]
    passwords: dict[str, str]

    def credentials(self, amqp_url: str, database_url: str) -> Credentials:
        def url(base: str, name: str) -> str:
            return _with_login(base, self.users[name], self.passwords[name])

        return Credentials(
            amqp={n: url(amqp_url, n) for n in BROKER},
            database={n: url(database_url, n) for n in (MIGRATOR, *TABLES)},
        )


@pytest.fixture(scope="session")
def logins() -> Logins:
    names = (MIGRATOR, *BROKER, *TABLES)
    return Logins(
        users={n: f"tq{RUN_ID}_{n}" for n in names},
        passwords={n: secrets.token_hex(12) for n in names},
    )


@pytest.fixture(scope="session")
async def granted_template(logins: Logins) -> AsyncIterator[str]:
    """A database set up (roles, migrations as the migrator, grants), cloned by each test."""
    name = f"tq_priv_{RUN_ID}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = _with_path(BASE.database_url, name)
    await setup_database(url, logins.credentials(BASE.amqp_url, url))
    yield name
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for user in logins.users.values():
        await _admin(f'DROP ROLE IF EXISTS "{user}"')


@pytest.fixture(scope="session")
async def broker_users(amqp_url: str, logins: Logins) -> AsyncIterator[None]:
    """This session's users, with their permissions in this session's vhost."""
    await setup_broker(
        BASE.model_copy(update={"amqp_url": amqp_url}),
        logins.credentials(amqp_url, BASE.database_url),
        broker_admin(),
    )
    yield
    users = [logins.users[n] for n in BROKER]
    await asyncio.gather(*(asyncio.to_thread(_rabbitmqctl, "delete_user", u) for u in users))


@dataclass(frozen=True)
class Deployment:
    admin: Settings
    credentials: Credentials
    logins: Logins

    def settings(self, name: str) -> Settings:
        """`name`'s settings: its own URLs (a client with no database gets the admin's)."""
        return self.admin.model_copy(
            update={
                "amqp_url": self.credentials.amqp.get(name, self.admin.amqp_url),
                "database_url": self.credentials.database.get(name, self.admin.database_url),
            }
        )

    async def connect(self, name: str) -> asyncpg.Connection[asyncpg.Record]:
        return await asyncpg.connect(self.credentials.database[name])


@pytest.fixture
async def deployment(
    amqp_url: str, granted_template: str, broker_users: None, logins: Logins
) -> AsyncIterator[Deployment]:
    """This test's database (a copy of the set-up one) and a fresh topology, set up by admin."""
    name = f"tq_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{granted_template}"')
    admin = Settings(
        amqp_url=amqp_url,
        database_url=_with_path(BASE.database_url, name),
        relay_idle_poll=0.05,
        retry_max_wait=0.2,
        retry_attempts=3,
        db_pool_size=3,
    )
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    for queue in CATALOGUE.queue_names:
        await channel.queue_delete(queue)
        await channel.queue_delete(messaging.dead_letter_queue(queue))
    await connection.close()
    credentials = logins.credentials(amqp_url, admin.database_url)
    await setup_broker(admin, Credentials(), None)  # the topology only: users are the session's
    yield Deployment(admin, credentials, logins)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
