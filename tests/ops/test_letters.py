"""The dead-letter tool's parsing, filters, replay headers and CLI usage checks, without servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from services.catalogue import CATALOGUE
from shared.cli.main import app
from shared.cli.output import to_json
from shared.messaging import topology as messaging
from shared.ops.dlq.letters import (
    NO_TYPE,
    DeadLetter,
    Filter,
    Group,
    Outcome,
    dead_letter_queue,
    dead_letter_queues,
    jsonable,
    parse_time,
    replay_headers,
)
from tests.helpers import T0

BODY = json.dumps(
    {
        "message_id": "m-1",
        "type": "ticket.submit",
        "payload": {"customer": {"nick": "小李", "name": "张三丰", "phone": "13812345678"}},
    },
    ensure_ascii=False,
).encode()


def worker_dead_letter(**headers: Any) -> DeadLetter:
    return DeadLetter.from_parts(
        "intake.dlq",
        0,
        body=BODY,
        headers={
            **messaging.dead_letter_headers(
                reason="invalid_contract",
                error="payload.channel: Field required; note 13812345678",
                queue="intake",
                attempts=2,
                service="intake",
            ),
            messaging.DL_AT: T0.isoformat(),
            messaging.ATTEMPT: 2,
            "trace": "abc",
            **headers,
        },
        message_id="m-1",
        type="ticket.submit",
    )


def test_a_worker_dead_letter_is_read_from_our_headers() -> None:
    dead = worker_dead_letter(**{"x-delivery-count": 3})
    assert (dead.origin, dead.reason, dead.queue, dead.attempts) == (
        "worker",
        "invalid_contract",
        "intake",
        2,
    )
    assert (dead.dead_lettered_at, dead.service, dead.delivery_count) == (T0, "intake", 3)
    assert dead.replay_queue == "intake"


def test_a_broker_dead_letter_is_read_from_x_death() -> None:
    dead = DeadLetter.from_parts(
        "presale.dlq",
        4,
        body=b"{}",
        headers={
            "tq-attempt": 3,
            "x-death": [
                {"count": 1, "reason": "delivery_limit", "queue": "presale", "time": T0},
                {"count": 1, "reason": "rejected", "queue": "presale", "time": T0 - timedelta(1)},
            ],
        },
        message_id="m-2",
    )
    assert (dead.origin, dead.reason, dead.queue, dead.attempts) == (
        "broker",
        "delivery_limit",
        "presale",
        3,
    )
    assert dead.dead_lettered_at == T0 and dead.position == 4
    assert dead.error == "dead-lettered by the broker (delivery_limit)"


def test_a_message_put_in_a_dlq_without_headers_still_reads() -> None:
    dead = DeadLetter.from_parts("finance.dlq", 0, body=b"\xff\xfe", headers=None)
    assert (dead.origin, dead.reason, dead.queue, dead.attempts) == (
        "unknown",
        "unknown",
        "finance",
        1,
    )
    assert dead.type is None and dead.dead_lettered_at is None
    assert dead.masked_body() == "\ufffd\ufffd"


def test_the_type_falls_back_to_the_body() -> None:
    dead = DeadLetter.from_parts("intake.dlq", 0, body=BODY, headers={})
    assert dead.type == "ticket.submit"


def test_personal_data_is_masked_in_body_headers_and_error() -> None:
    dead = worker_dead_letter(customer_phone="13812345678")
    shown = json.dumps(dead.detail(), ensure_ascii=False)
    assert "张三丰" not in shown and "13812345678" not in shown
    assert dead.masked_body()["payload"]["customer"] == {
        "nick": "小李",
        "name": "张***",
        "phone": "*********78",
    }
    assert dead.summary()["error"] == "payload.channel: Field required; note *********78"
    unparsable = DeadLetter.from_parts("intake.dlq", 0, body=b'{"phone": "13812345678"', headers={})
    assert unparsable.masked_body() == '{"phone": "*********78"'


def test_a_replayed_copy_has_no_dead_letter_headers_and_one_more_attempt() -> None:
    dead = worker_dead_letter(
        **{"x-death": [{"reason": "rejected"}], "x-delivery-count": 5, "raw": b"\xff"}
    )
    headers = replay_headers(dead, audit_id=7)
    assert headers == {
        messaging.ATTEMPT: 3,
        "trace": "abc",
        "raw": bytearray(b"\xff"),  # what the AMQP client can encode
        "tq-replay-audit": 7,
    }
    assert replay_headers(DeadLetter.from_parts("intake.dlq", 0, body=b"", headers={})) == {
        messaging.ATTEMPT: 2
    }


@pytest.mark.parametrize(
    ("selection", "matches"),
    [
        (Filter(), True),
        (Filter.build(message_ids=["m-1"]), True),
        (Filter.build(message_ids=["m-2"]), False),
        (Filter.build(queues=["intake"]), True),
        (Filter.build(queues=["intake.dlq"]), True),
        (Filter.build(queues=["presale"]), False),
        (Filter.build(reasons=["unknown_type", "invalid_contract"]), True),
        (Filter.build(reasons=["unknown_type"]), False),
        (Filter.build(types=["ticket.submit"]), True),
        (Filter.build(types=[NO_TYPE]), False),
        (Filter.build(since=T0), True),
        (Filter.build(since=T0 + timedelta(seconds=1)), False),
        (Filter.build(until=T0 + timedelta(seconds=1)), True),
        (Filter.build(until=T0), False),  # until is exclusive
        (Filter.build(queues=["intake"], reasons=["invalid_contract"], since=T0), True),
    ],
)
def test_filters(selection: Filter, matches: bool) -> None:
    assert selection.matches(worker_dead_letter()) is matches


def test_time_bounds_never_match_a_message_without_a_time() -> None:
    dead = DeadLetter.from_parts("intake.dlq", 0, body=b"", headers={})
    assert not Filter.build(since=T0).matches(dead)
    assert not Filter.build(until=T0).matches(dead)
    assert Filter.build(types=[NO_TYPE]).matches(dead)


def test_a_filter_describes_itself_for_the_audit_log() -> None:
    assert Filter().selects_all and Filter().describe() == {"all": True}
    described = Filter.build(queues=["intake.dlq"], reasons=["b", "a"], since=T0).describe()
    assert described == {
        "all": False,
        "queues": ["intake"],
        "reasons": ["a", "b"],
        "since": T0.isoformat(),
    }
    assert json.dumps(described)


def test_queue_names() -> None:
    assert dead_letter_queue("intake") == dead_letter_queue("intake.dlq") == "intake.dlq"
    assert dead_letter_queues() == [f"{q}.dlq" for q in CATALOGUE.queue_names]
    assert dead_letter_queues(["finance", "intake.dlq"]) == ["intake.dlq", "finance.dlq"]
    with pytest.raises(ValueError, match="unknown queue"):
        dead_letter_queue("ticketq")


def test_times() -> None:
    assert parse_time("2h", now=T0) == T0 - timedelta(hours=2)
    assert parse_time("30m", now=T0) == T0 - timedelta(minutes=30)
    assert parse_time("7d", now=T0) == T0 - timedelta(days=7)
    assert parse_time("2026-11-23T10:00+08:00") == T0
    assert parse_time("2026-11-23T02:00:00Z") == T0
    assert parse_time("2026-11-23T02:00") == T0  # no offset: UTC
    assert parse_time("2026-11-23") == datetime(2026, 11, 23, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday")


def test_header_values_become_json() -> None:
    assert jsonable({"t": T0, "b": b"\xe4\xb8\xad", "l": [bytearray(b"x")]}) == {
        "t": T0.isoformat(),
        "b": "中",
        "l": ["x"],
    }


def test_an_outcome_says_what_happened_to_each_message() -> None:
    first, second = worker_dead_letter(), worker_dead_letter()
    outcome = Outcome("replay", Filter(), audit_id=3, matched=[first, second], done=[first])
    outcome.failed.append(second)
    outcome.error = "refused"
    data = outcome.to_dict()
    assert (data["matched"], data["done"], data["failed"], data["audit_id"]) == (2, 1, 1, 3)
    assert [m["outcome"] for m in data["messages"]] == ["replayed", "failed"]
    assert [m["target"] for m in data["messages"]] == ["intake", "intake"]
    assert not outcome.ok
    dry = Outcome("discard", Filter(), dry_run=True, matched=[first]).to_dict()
    assert dry["messages"][0]["outcome"] == "would_discard" and dry["messages"][0]["target"] is None


@pytest.mark.parametrize(
    "args",
    [
        ["replay"],  # which messages?
        ["discard", "--yes"],
        ["replay", "--all", "m-1"],
        ["replay", "--all", "--queue", "intake"],
        ["replay", "--queue", "nowhere"],
        ["discard", "--since", "last tuesday"],
        ["peek"],  # --queue is required
        ["peek", "--queue", "nowhere"],
        ["peek", "--queue", "intake", "-n", "0"],
        ["list", "--queue", "nowhere"],
        ["audit", "--limit", "0"],
    ],
)
def test_usage_errors_exit_2_before_connecting(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["dlq", *args])
    assert result.exit_code == 2, result.output


PERSONAL = (
    '"customer": {"id": "c-9", "nick": "小李", "name": "张三丰", "address": "杭州市文三路100号"'
)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"n": ' + b"9" * 5000 + b"}",
        b'{"type": "ticket.submit", "a": ' + b"[" * 500 + b"]" * 500 + b"}",
        ("{" + PERSONAL).encode(),  # truncated
        ("{" + PERSONAL + "}}").encode("utf-16"),
        b"\xef\xbb\xbf{" + PERSONAL.encode() + b"}}",
        ("{" + PERSONAL + ', "bad": "').encode() + b"\xff\xfe" + b'"}}',
        b"\x00\x01\x02 binary 13812345678",
    ],
    ids=["deep", "huge-int", "deep-inside", "truncated", "utf-16", "bom", "bad-utf-8", "binary"],
)
def test_any_body_the_broker_holds_is_shown_as_masked_text(body: bytes) -> None:
    """Deep, huge or broken bodies are raw text for ops' eyes, personal data masked."""
    dead = DeadLetter.from_parts("intake.dlq", 0, body=body, headers={}, message_id="m-x")
    detail = dead.detail()
    assert isinstance(detail["body"], str)
    shown = to_json([detail])
    for secret in ("张三丰", "文三路", "13812345678", "三丰"):
        assert secret not in shown
    assert dead.summary()["message_id"] == "m-x"
    assert replay_headers(dead)["tq-attempt"] == 2


def test_a_truncated_body_keeps_what_is_not_personal() -> None:
    dead = DeadLetter.from_parts("intake.dlq", 0, body=("{" + PERSONAL).encode(), headers={})
    assert dead.masked_body() == (
        '{"customer": {"id": "c-9", "nick": "小李", "name": "张***", "address": "杭***"'
    )


def test_a_type_taken_from_the_body_is_masked_where_shown() -> None:
    dead = DeadLetter.from_parts("intake.dlq", 0, body=b'{"type": "call 13907776655"}', headers={})
    assert dead.type == "call 13907776655"  # as read, for filters
    group = Group("intake.dlq", "unknown", dead.type, 1)
    for shown in (dead.summary(), dead.detail(), group.to_dict()):
        assert "13907776655" not in to_json(shown)
