"""An outage is logged once when it starts and once when it ends; waiters wake when it ends."""

from __future__ import annotations

import asyncio
import logging

from shared.dependencies import Dependency, outages_from
from tests.helpers import captured_logs


class Switch:
    """A probe that fails while `down`, counting its calls."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionRefusedError("refused")


async def test_an_outage_is_logged_once_however_often_it_fails() -> None:
    probe = Switch()
    database = Dependency("database", probe, poll=0.01)
    changes: list[bool] = []
    database.on_change(changes.append)
    async with captured_logs() as logs:
        assert await database.check()
        probe.down = True
        assert not any(await asyncio.gather(*(database.check() for _ in range(5))))
        for _ in range(3):
            database.failed(OSError("again"))
        assert not database.is_up and database.outages == 1
        waiting = asyncio.create_task(database.wait_up())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        probe.down = False
        await asyncio.wait_for(waiting, 1.0)  # its own watch found it back
        await database.close()
    assert [(e["event"], e["dependency"]) for e in logs] == [
        ("outage_started", "database"),
        ("outage_ended", "database"),
    ]
    assert logs[0]["error"] == "ConnectionRefusedError: refused"
    assert changes == [False, True]
    assert database.outages == 1


async def test_checks_at_the_same_moment_share_one_probe() -> None:
    probe = Switch()
    database = Dependency("database", probe)
    assert all(await asyncio.gather(*(database.check() for _ in range(10))))
    assert probe.calls == 1


async def test_a_client_librarys_connection_warnings_become_the_one_outage_line() -> None:
    broker = Dependency("broker", Switch(), poll=60)
    undo = outages_from(broker, signals=("tests.amqp.connection",), quiet=("tests.amqp.tools",))
    connection = logging.getLogger("tests.amqp.connection")
    tools = logging.getLogger("tests.amqp.tools")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    parent = logging.getLogger("tests.amqp")
    parent.setLevel(logging.INFO)
    parent.addHandler(handler)
    try:
        async with captured_logs() as logs:
            connection.info("connected")
            tools.error("a callback failed")  # not about the connection: shown, no outage
            assert broker.is_up
            connection.warning("Connection attempt failed: refused")
            tools.error("Callback failed: connection closed")
            connection.warning("Connection attempt failed: refused")
            connection.info("Reconnecting after 5 seconds")
        assert await broker.check()
        connection.info("connected again")
    finally:
        parent.removeHandler(handler)
        undo()
        await broker.close()
    assert seen == ["connected", "a callback failed", "connected again"]
    assert [e["event"] for e in logs] == ["outage_started"]
    assert logs[0]["error"] == "ConnectionError: Connection attempt failed: refused"


async def test_a_failure_reported_just_after_recovery_is_probed_before_it_counts() -> None:
    """The fallout of the drop that ended (a late reconnect warning) is not a second outage;
    a real one, confirmed by the probe, is."""
    probe = Switch()
    broker = Dependency("broker", probe, poll=0.01)
    async with captured_logs() as logs:
        broker.failed(ConnectionResetError("dropped"))
        assert await broker.check()  # back
        broker.failed(ConnectionError("a late reconnect warning"))
        assert broker.is_up and await broker.check()
        probe.down = True
        broker.failed(ConnectionError("down again"))
        await asyncio.sleep(0.05)  # the probe it asked for fails: a second outage
        assert not broker.is_up
        await broker.close()
    assert [e["event"] for e in logs] == ["outage_started", "outage_ended", "outage_started"]
