"""The runtime's first step: every way a message can be unusable has its own reason (§9, §10).

`decode` turns bytes into an envelope and a typed payload, or raises `InvalidMessage` with a
reason (what ops group dead letters by) and an error that never echoes the input's values.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.contracts import SubmitTicket
from services.intake.worker import SERVICE as INTAKE
from shared.messaging.amqp_headers import Unreadable
from shared.messaging.envelope import Envelope
from shared.messaging.runtime import InvalidMessage, decode
from shared.tickets.contracts import Customer
from tests.helpers import contact

PHONE = "13812345678"


def good() -> dict[str, Any]:
    ticket = contact("chat-1", customer=Customer(id="c-1", nick="小王", phone=PHONE))
    return Envelope.wrap(ticket, producer="im-gateway", message_id="m-1").model_dump(mode="json")


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False).encode()


def with_payload(**changes: Any) -> dict[str, Any]:
    envelope = good()
    envelope["payload"] = {**envelope["payload"], **changes}
    return envelope


def refused(body: bytes) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        decode(body, INTAKE.routes["intake"])
    return caught.value


def test_a_good_message_decodes_to_its_envelope_and_typed_payload() -> None:
    envelope, payload = decode(encode(good()), INTAKE.routes["intake"])
    assert envelope.message_id == "m-1" and envelope.type == "ticket.submit"
    assert isinstance(payload, SubmitTicket)
    assert payload.external_id == "chat-1" and payload.customer.phone == PHONE


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b'{"message_id": "m-1",', b'{"subject": "\xc3\x28"}', b"\x00\x01"],
    ids=["broken", "empty", "truncated", "not-utf-8", "binary"],
)
def test_malformed_json(body: bytes) -> None:
    assert refused(body).reason == "malformed_json"


@pytest.mark.parametrize(
    ("envelope", "error"),
    [
        ([1, 2, 3], "(root): Input should be an object"),
        ({**good(), "message_id": ""}, "message_id: String should match pattern"),
        ({k: v for k, v in good().items() if k != "sent_at"}, "sent_at: Field required"),
        ({**good(), "sent_at": "2026-11-23T10:00:00"}, "sent_at: Input should have timezone"),
        ({**good(), "schema_version": 0}, "schema_version: Input should be greater than"),
        ({**good(), "payload": "text"}, "payload: Input should be an object"),
        ({**good(), "priority": "high"}, "priority: Extra inputs are not permitted"),
    ],
    ids=["not-an-object", "empty-id", "no-sent-at", "naive-time", "version-0", "payload", "extra"],
)
def test_a_bad_envelope_is_an_invalid_contract(envelope: Any, error: str) -> None:
    exc = refused(json.dumps(envelope).encode())
    assert exc.reason == "invalid_contract"
    assert error in exc.error


def test_an_unknown_type() -> None:
    exc = refused(encode({**good(), "type": "ticket.teleport"}))
    assert exc.reason == "unknown_type"
    assert "'ticket.teleport'" in exc.error


def test_a_known_type_this_queue_does_not_take_is_an_unknown_type_here() -> None:
    routed = {**good(), "type": "ticket.routed"}  # for presale / aftersales, not intake
    exc = refused(encode(routed))
    assert exc.reason == "unknown_type"
    assert "this queue takes no message of type 'ticket.routed'" in exc.error


@pytest.mark.parametrize("version", [2, 99])
def test_a_schema_version_this_service_cannot_read(version: int) -> None:
    exc = refused(encode({**good(), "schema_version": version}))
    assert exc.reason == "unsupported_version"
    assert exc.error == f"ticket.submit v{version}; this service reads v1"


@pytest.mark.parametrize(
    ("envelope", "error"),
    [
        (with_payload(channel="fax"), "payload.channel: Input should be 'wangwang'"),
        (with_payload(subject=""), "payload.subject: String should have at least 1 character"),
        (with_payload(source="Im Gateway!"), "payload.source: String should match pattern"),
        (with_payload(customer={"id": "c-1"}), "payload.customer.nick: Field required"),
        (with_payload(occurred_at="yesterday"), "payload.occurred_at: Input should be a valid"),
        (with_payload(colour="red"), "payload.colour: Extra inputs are not permitted"),
        (with_payload(order={"id": "o-1", "amount": "-1"}), "payload.order.amount: Value error"),
    ],
    ids=["channel", "empty-subject", "source", "customer", "occurred-at", "extra", "amount"],
)
def test_a_bad_payload_is_an_invalid_contract_naming_the_field(
    envelope: dict[str, Any], error: str
) -> None:
    exc = refused(encode(envelope))
    assert exc.reason == "invalid_contract"
    assert error in exc.error


def test_errors_name_fields_without_echoing_their_values() -> None:
    """The error goes into a dead letter's headers and the log: no input values in it."""
    envelope = with_payload(channel=f"fax {PHONE}", subject="x" * 300)
    envelope["payload"]["customer"]["phone"] = PHONE * 5  # too long
    exc = refused(encode(envelope))
    assert "payload.customer.phone" in exc.error and "payload.subject" in exc.error
    assert PHONE not in exc.error and "xxxxx" not in exc.error


# --- hostile and lenient input: refused once, with a reason, never as another exception ------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested deeper than 32 levels"),
        (b"[" * 500 + b"]" * 500, "nested deeper than 32 levels"),  # below the recursion limit
        (b'{"a": ' * 40 + b"1" + b"}" * 40, "nested deeper than 32 levels"),
        (b"1" * 5000, "an integer of more than 20 digits"),
        (b'{"n": ' + b"9" * 30 + b"}", "an integer of more than 20 digits"),
        (b'{"n": NaN}', "NaN is not JSON"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        ('{"subject": "你好"}'.encode("utf-16"), "not UTF-8"),
        ('{"subject": "你好"}'.encode("utf-16-le"), "Expecting property name"),
        (b"\xff" * 10, "not UTF-8"),
    ],
    ids=[
        "deep-5000",
        "deep-500",
        "deep-objects",
        "huge-int",
        "huge-int-field",
        "nan",
        "bom",
        "utf-16",
        "utf-16-le",
        "bad-utf-8",
    ],
)
def test_bodies_beyond_the_limits_are_malformed_json(body: bytes, error: str) -> None:
    exc = refused(body)
    assert exc.reason == "malformed_json"
    assert error in exc.error


def test_a_body_nested_like_ours_is_within_the_limits() -> None:
    envelope = good()
    envelope["payload"]["order"] = {
        "id": "o-1",
        "amount": "59.00",
        "items": [{"sku": "s-1", "title": "t", "quantity": 2, "unit_price": "29.50"}],
    }
    _, payload = decode(encode(envelope), INTAKE.routes["intake"])
    assert isinstance(payload, SubmitTicket) and payload.order is not None


@pytest.mark.parametrize(
    ("envelope", "error"),
    [
        ({**good(), "schema_version": "1"}, "schema_version: Input should be a valid integer"),
        ({**good(), "sent_at": 12345}, "sent_at: Input should be a valid datetime"),
        ({**good(), "message_id": "m" * 201}, "message_id: String should match pattern"),
        ({**good(), "message_id": "消息" * 50}, "message_id: String should match pattern"),
        ({**good(), "producer": "系统" * 40}, "producer: String should have at most 60"),
        (with_payload(order={"id": "o-1", "amount": 59.0}), "payload.order.amount: Value error"),
        (with_payload(order={"id": "o-1", "amount": 59}), "payload.order.amount: Value error"),
        (with_payload(order={"id": "o-1", "amount": "5e1"}), "payload.order.amount: Value error"),
        (with_payload(subject=42), "payload.subject: Input should be a valid string"),
        (with_payload(text="你好\u0000"), "payload: Value error, text contains U+0000"),
        (
            with_payload(customer={"id": "c-1", "nick": "\u0000"}),
            "payload.customer: Value error, nick contains U+0000",
        ),
        ({**good(), "producer": "im\u0000"}, "(root): Value error, producer contains U+0000"),
    ],
    ids=[
        "version-as-text",
        "time-as-number",
        "long-id",
        "id-of-600-bytes",
        "long-producer",
        "amount-float",
        "amount-int",
        "amount-exponent",
        "subject-number",
        "nul-in-text",
        "nul-in-nested",
        "nul-in-envelope",
    ],
)
def test_the_contract_is_read_in_the_schemas_strict_terms(envelope: Any, error: str) -> None:
    exc = refused(encode(envelope))
    assert exc.reason == "invalid_contract"
    assert error in exc.error


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", None, "application/json; charset=utf-16"],
)
def test_a_content_type_other_than_json_is_refused(content_type: str | None) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode(encode(good()), INTAKE.routes["intake"], content_type=content_type)
    assert caught.value.reason == "invalid_properties"
    assert "content type" in caught.value.error


def test_json_with_a_utf_8_charset_is_json() -> None:
    decode(encode(good()), INTAKE.routes["intake"], content_type="application/json; charset=UTF-8")


@pytest.mark.parametrize(
    "reply_to",
    [
        "intake",
        "finance",
        "ticketq.dlq-tool.lock",
        "",
        "amq_intake",
        "amq.gen-",
        # Direct reply-to is reached through the default exchange, which no worker may use.
        "amq.rabbitmq.reply-to",
        "amq.rabbitmq.reply-to.g1h2AA5yZXBseUAxMjM0NTY3OA==",
    ],
)
def test_reply_to_may_name_no_service_queue(reply_to: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode(encode(good()), INTAKE.routes["intake"], reply_to=reply_to)
    assert caught.value.reason == "invalid_properties"
    assert "reply_to" in caught.value.error


@pytest.mark.parametrize(
    "reply_to",
    [
        "amq.gen-JzTY20BRgKO-HjmUJj0wLg",
        "amq_19b0919fa0724aa2b570ffc7948e3ea8",
    ],
)
def test_reply_to_may_name_a_reply_queue(reply_to: str) -> None:
    decode(encode(good()), INTAKE.routes["intake"], reply_to=reply_to)


def test_headers_the_client_could_not_read_are_invalid_properties() -> None:
    """`shared.messaging.amqp_headers` leaves a marker where a header was too deep or unreadable."""
    headers = {"tq-attempt": 1, "deep": {"x": Unreadable("(a value nested deeper than 16 levels)")}}
    with pytest.raises(InvalidMessage) as caught:
        decode(encode(good()), INTAKE.routes["intake"], headers=headers)
    assert caught.value.reason == "invalid_properties"
    assert caught.value.error == "header 'deep.x': (a value nested deeper than 16 levels)"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | _JSON.map(lambda v: json.dumps(v).encode())
    | st.tuples(st.sampled_from(sorted(good())), _JSON).map(
        lambda kv: encode({**good(), kv[0]: kv[1]})
    )
    | st.tuples(st.sampled_from(sorted(good()["payload"])), _JSON).map(
        lambda kv: encode(with_payload(**{kv[0]: kv[1]}))
    )
)
def test_decode_raises_nothing_but_invalid_message(body: bytes) -> None:
    with contextlib.suppress(InvalidMessage):
        decode(body, INTAKE.routes["intake"])
