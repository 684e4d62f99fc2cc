"""Fixtures for tests against the real RabbitMQ and PostgreSQL (started by `make test`).

Each test session gets its own RabbitMQ vhost (when `TICKETQ_RABBITMQCTL` is available) and
each test its own database cloned from a migrated template, so sessions and tests never see
each other's messages or rows.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from services.catalogue import CATALOGUE
from shared.config import Settings, without_own_urls
from shared.db import Pool, create_pool, migrate
from shared.logging import configure_logging
from shared.messaging import topology as messaging

# Fixtures shared by several rooms' tests.
pytest_plugins = ["tests.staff"]

# Each service's own URLs (`servers.sh env` exports them) would point workers this suite starts
# at the shared database and vhost: tests give every process the session's and test's own, and
# tests/privilege the per-service ones.
for _variable in set(os.environ) - set(without_own_urls(os.environ)):
    del os.environ[_variable]
BASE = Settings()
RUN_ID = uuid.uuid4().hex[:8]


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + path))


def _rabbitmqctl(*args: str) -> None:
    cmd = os.environ.get("TICKETQ_RABBITMQCTL")
    assert cmd, "TICKETQ_RABBITMQCTL is needed for a test vhost"
    subprocess.run([*shlex.split(cmd), *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging(os.environ.get("TICKETQ_TEST_LOG_LEVEL", "warning"))


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A vhost of this session's own, removed at the end."""
    if not os.environ.get("TICKETQ_RABBITMQCTL"):
        yield BASE.amqp_url  # the user's own broker: tests delete and redeclare our queues
        return
    vhost = f"tq-test-{RUN_ID}"
    user = urlsplit(BASE.amqp_url).username or "guest"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    yield _with_path(BASE.amqp_url, quote(vhost, safe=""))
    _rabbitmqctl("delete_vhost", vhost)


async def _admin(sql: str) -> None:
    # A connection of its own each time: a test may restart PostgreSQL in between.
    admin = await asyncpg.connect(BASE.database_url)
    try:
        for attempt in range(10):
            try:
                await admin.execute(sql)
                return
            except asyncpg.InsufficientPrivilegeError:
                # DROP DATABASE ... FORCE may meet an autovacuum worker (the superuser's) in
                # the test's database; it ends within moments.
                if attempt == 9:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def template_db() -> AsyncIterator[str]:
    name = f"tq_tmpl_{RUN_ID}"
    await _admin(f'CREATE DATABASE "{name}"')
    await migrate(_with_path(BASE.database_url, name))
    yield name
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(template_db: str) -> AsyncIterator[str]:
    name = f"tq_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _with_path(BASE.database_url, name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(amqp_url: str, database_url: str) -> Settings:
    return Settings(
        amqp_url=amqp_url,
        database_url=database_url,
        relay_idle_poll=0.05,
        retry_max_wait=0.2,
        retry_attempts=3,
        db_pool_size=5,
    )


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[AbstractRobustConnection]:
    """A connection to a topology freshly declared (our queues emptied first)."""
    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel()
    for name in CATALOGUE.queue_names:
        await channel.queue_delete(name)
        await channel.queue_delete(messaging.dead_letter_queue(name))
    await messaging.declare_topology(channel, settings, CATALOGUE.queue_names)
    await channel.close()
    yield connection
    await connection.close()


@pytest.fixture
async def channel(broker: AbstractRobustConnection) -> AsyncIterator[AbstractChannel]:
    ch = await broker.channel()
    yield ch
    await ch.close()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Pool]:
    pool = await create_pool(settings, size=3)
    yield pool
    await pool.close()


# A test that uses any of these talks to the real servers.
_SERVER_FIXTURES = frozenset({"amqp_url", "database_url", "settings", "broker", "channel", "db"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
