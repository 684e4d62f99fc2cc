"""The broker's side of setup: the topology declared once, one user per principal.

Users and their permissions go in as RabbitMQ definitions (one import, the same JSON for
`rabbitmqctl import_definitions` on the broker's host and the management API's
`POST /api/definitions`): importing them again gives the same users and permissions. Passwords
travel as salted hashes (`rabbit_password_hashing_sha256`), never on a command line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shlex
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import ChannelPreconditionFailed

from shared.config import Settings
from shared.messaging import amqp, amqp_headers
from shared.messaging import topology as messaging
from shared.setup.grants import permissions


@dataclass(frozen=True)
class Login:
    """Who a URL signs in as, where."""

    user: str
    password: str
    vhost: str

    @classmethod
    def of(cls, amqp_url: str) -> Login:
        parts = urlsplit(amqp_url)
        if not parts.username or parts.password is None:
            raise ValueError(f"{parts.hostname}: the AMQP URL names no user and password")
        return cls(unquote(parts.username), unquote(parts.password), unquote(parts.path[1:]) or "/")


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ++ sha256(salt ++ password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(logins: Mapping[str, Login]) -> dict[str, Any]:
    """Each principal's user (no tags: no management, no administration) and permissions."""
    users, grants, topics = [], [], []
    for name, login in logins.items():
        allowed = permissions(name)
        users.append(
            {
                "name": login.user,
                "password_hash": password_hash(login.password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": "",
            }
        )
        grants.append(
            {
                "user": login.user,
                "vhost": login.vhost,
                "configure": allowed.configure,
                "write": allowed.write,
                "read": allowed.read,
            }
        )
        topics += [
            {
                "user": login.user,
                "vhost": login.vhost,
                "exchange": exchange,
                "write": keys,
                "read": "^$",
            }
            for exchange, keys in (
                (messaging.EXCHANGE, allowed.topic_write),
                (messaging.DEAD_LETTER_EXCHANGE, allowed.dead_letter_write),
            )
        ]
    return {"users": users, "permissions": grants, "topic_permissions": topics}


class BrokerAdmin(Protocol):
    async def import_definitions(self, body: Mapping[str, Any]) -> None: ...


class RabbitmqCtl:
    """On the broker's host (`TICKETQ_RABBITMQCTL`, e.g. `servers.sh rabbitmqctl`)."""

    def __init__(self, command: str) -> None:
        self.command = shlex.split(command)

    async def import_definitions(self, body: Mapping[str, Any]) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.command,
            "-q",
            "import_definitions",
            "--format",
            "json",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate(json.dumps(body).encode())
        if proc.returncode != 0:
            raise RuntimeError(f"rabbitmqctl import_definitions failed: {out.decode()[-2000:]}")


class ManagementApi:
    """Through the management plugin (`TICKETQ_ADMIN_MANAGEMENT_URL`, http://user:pass@host:15672)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
        token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        self.authorization = "Basic " + base64.b64encode(token.encode()).decode()

    async def import_definitions(self, body: Mapping[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.base}/api/definitions",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": self.authorization, "Content-Type": "application/json"},
        )
        await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=30).close())


async def declare(
    connection: AbstractRobustConnection, settings: Settings, queues: list[str]
) -> None:
    """The topology, once, with the admin's rights. `ticketq` and `ticketq.dlx` are topic
    exchanges (so that RabbitMQ checks each publisher's routing keys); one made before, as
    direct, is replaced (its bindings are declared again at once; a publish meanwhile is
    returned and retried, a broker's dead-lettering held and retried: at-least-once)."""
    channel = await connection.channel()
    for name in (messaging.EXCHANGE, messaging.DEAD_LETTER_EXCHANGE):
        try:
            await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        except ChannelPreconditionFailed:  # it closed the channel
            channel = await connection.channel()
            await channel.exchange_delete(name)
    await messaging.declare_topology(channel, settings, queues)
    await channel.close()


async def connect_admin(settings: Settings) -> AbstractRobustConnection:
    amqp_headers.install()
    return await amqp.connect_robust(settings.amqp_url, name="setup")
