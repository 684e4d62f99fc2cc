"""Personal data never reaches a worker's log unmasked, even at debug level (SPEC §10).

A real intake process at log level debug handles a ticket full of personal data, a follow-up
whose text repeats the phone number, and two bad messages carrying the same data (one the
contract refuses, one the database refuses inside the handler). Every line of its log must be
JSON, and no line may carry the name, the phone or the address: not as text, not escaped as
JSON (`\\u5f20`), not as raw UTF-8 bytes (`\\xe5\\xbc\\xa0`) as a frame dump would show them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aio_pika.abc import AbstractChannel

from services.intake.client import TicketPublisher, publish_raw
from shared.config import Settings
from shared.db import Pool
from shared.logging import configure_logging
from shared.messaging.envelope import Envelope
from shared.messaging.topology import DL_ERROR, DL_REASON
from shared.tickets.contracts import Customer
from tests.helpers import (
    WorkerProcesses,
    contact,
    depth,
    handled,
    json_lines,
    take_all,
    wait_until,
)

NAME = "张三丰"
PHONE = "13812345678"
ADDRESS = "杭州市西湖区文三路 100 号"
CUSTOMER = Customer(id="c-pii", nick="三丰的店铺粉", name=NAME, phone=PHONE, address=ADDRESS)


def spellings(secret: str) -> set[str]:
    """Every way `secret` could be written into a log line and still be read back."""
    return {
        secret,
        json.dumps(secret)[1:-1],  # JSON with ensure_ascii: \u5f20\u4e09\u4e30
        repr(secret.encode())[2:-1],  # bytes repr, as frame dumps print bodies: \xe5\xbc\xa0
        secret.encode("unicode_escape").decode(),
    }


# The address's distinctive part too: a masker that cut the string in two would leak it.
SECRETS = {
    s: name
    for name, secret in (
        ("name", NAME),
        ("phone", PHONE),
        ("address", ADDRESS),
        ("street", "文三路"),
    )
    for s in spellings(secret)
}


def leaks(text: str) -> list[str]:
    return sorted({name for spelled, name in SECRETS.items() if spelled in text})


async def test_personal_data_is_masked_in_every_log_line_at_debug_level(
    settings: Settings, channel: AbstractChannel, db: Pool, tmp_path: Path
) -> None:
    ticket = contact(
        "chat-pii",
        subject="还没发货吗",
        text=f"我是{NAME},地址是{ADDRESS},电话 {PHONE},请尽快发货",
        order_id="o-pii",
        customer=CUSTOMER,
    )
    follow_up = contact(
        "phone-pii",
        source="phone-system",
        subject="再次催发货",
        text=f"客户来电 {PHONE},说{NAME}还在等",
        order_id="o-pii",
        customer=CUSTOMER,
    )
    refused = Envelope.wrap(contact("chat-pii-bad", customer=CUSTOMER), producer="t").model_dump(
        mode="json"
    )
    refused["message_id"] = "m-pii-refused"
    refused["payload"]["channel"] = f"fax to {PHONE}"  # the contract refuses it
    # Valid by the contract, refused inside the handler (a time the database driver cannot
    # convert to UTC): the traceback path of the log, with the personal data in the message
    # being handled. (Text with U+0000 served here until the contract refused it.)
    unstorable = Envelope.wrap(
        contact("chat-pii-unstorable", subject=NAME, text=PHONE, customer=CUSTOMER),
        producer="t",
        message_id="m-pii-unstorable",
    ).model_dump(mode="json")
    unstorable["payload"]["occurred_at"] = "9999-12-31T23:59:00-23:59"

    workers = WorkerProcesses(tmp_path)
    worker = workers.start("intake", settings.model_copy(update={"log_level": "debug"}))
    try:
        async with TicketPublisher(settings.amqp_url, producer="t") as pub:
            await pub.publish(ticket)
            await publish_raw(settings.amqp_url, [refused, unstorable])
            await pub.publish(follow_up)

        async def all_handled() -> bool:
            return (
                worker.alive()
                and await depth(channel, "aftersales") == 2
                and await depth(channel, "intake.dlq") == 2
                and worker.log().count('"event": "message_handled"') == 4
            )

        await wait_until(all_handled, what="two routed messages and two dead letters")
    finally:
        await workers.close()
    assert worker.proc.returncode == 0

    text = worker.log()
    lines = worker.lines()  # every line is a JSON object
    assert lines and len(lines) == len(text.splitlines())
    assert leaks(text) == [], f"raw log text leaks {leaks(text)}"
    for line in lines:  # decoded, so JSON's escapes cannot hide anything
        shown = json.dumps(line, ensure_ascii=False)
        assert leaks(shown) == [], f"log line leaks {leaks(shown)}: {shown}"
        assert line["level"] not in ("error", "critical"), line

    outcomes = {line["message_id"]: line for line in handled(lines)}
    assert len(outcomes) == 4, "each message handled once"
    created = next(line for line in outcomes.values() if line["outcome"] == "created")
    ticket_id = await db.fetchval("SELECT id FROM tickets WHERE order_id = 'o-pii'")
    assert created["ticket_id"] == ticket_id
    assert created["type"] == "ticket.submit"
    assert isinstance(created["duration_ms"], int | float) and created["duration_ms"] >= 0
    assert {line["outcome"] for line in outcomes.values()} == {
        "created",
        "follow_up",
        "dead_lettered",
    }
    assert outcomes["m-pii-refused"]["reason"] == "invalid_contract"
    assert outcomes["m-pii-unstorable"]["reason"] == "handler_error"
    failure = _one(lines, event="handling_failed")
    assert failure["level"] == "warning" and failure["message_id"] == "m-pii-unstorable"
    assert failure["exception"], "the handler's traceback is logged"

    # The dead-letter headers say why, without the data (ops tools show headers as they are).
    for message in await take_all(channel, "intake.dlq"):
        headers = json.dumps(message.headers, ensure_ascii=False, default=str)
        assert leaks(headers) == [], f"dead-letter headers leak {leaks(headers)}: {headers}"
        assert message.headers[DL_REASON] in ("invalid_contract", "handler_error")
        assert message.headers[DL_ERROR]


def _one(lines: list[dict[str, Any]], **match: object) -> dict[str, Any]:
    found = [line for line in lines if all(line.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one line with {match}, got {found}"
    return found[0]


def test_library_records_are_json_masked_and_frame_dumps_stay_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What aio-pika, asyncpg or asyncio log through the standard library is rendered like
    our own lines; the AMQP client's debug frame dumps (bodies as bytes) are never written."""
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    with restored_logging():
        configure_logging("debug", service="intake")
        logging.getLogger("aiormq.connection").debug(
            "Prepare to send ChannelFrame(payload=%r)", f"{NAME} {PHONE}".encode()
        )
        logging.getLogger("asyncpg.pool").warning("connection lost while serving %s", PHONE)
        try:
            # Free text is masked for numbers only (phones, cards): a name or an address
            # inside an exception's message could not be recognised, so none may be put there.
            raise ValueError(f"customer {PHONE} unreachable")
        except ValueError:
            logging.getLogger("aio_pika.robust_connection").exception("reconnect failed")
    err = stderr.getvalue()
    lines = json_lines(err)
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("asyncpg.pool", "warning"),
        ("aio_pika.robust_connection", "error"),
    ]
    assert lines[0]["event"] == "connection lost while serving *********78"
    assert lines[0]["service"] == "intake"
    assert lines[1]["exception"][0]["exc_type"] == "ValueError"
    assert leaks(err) == []
    assert leaks(json.dumps(lines, ensure_ascii=False)) == []
    assert "*********78 unreachable" in lines[1]["exception"][0]["exc_value"]


LIBRARIES = ("", "aiormq", "aio_pika")  # "": the root logger


@contextlib.contextmanager
def restored_logging() -> Iterator[None]:
    """This process's logging set-up (structlog, the root handlers, levels) as it was before."""
    structlog_config = structlog.get_config()
    root = logging.getLogger()
    handlers, levels = root.handlers[:], {n: logging.getLogger(n).level for n in LIBRARIES}
    try:
        yield
    finally:
        structlog.configure(**structlog_config)
        structlog.contextvars.unbind_contextvars("service")
        root.handlers[:] = handlers
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
