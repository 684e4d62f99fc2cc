"""The runtime's first step: every way a message can be unusable has its own reason (§9, §10).

`decode` turns bytes into an envelope and a typed payload, or raises `InvalidMessage` with a
reason (what ops group dead letters by) and an error that never echoes the input's values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.intake.contracts import SubmitTicket
from services.intake.worker import SERVICE as INTAKE
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
        ([1, 2, 3], "(root): Input should be a valid dictionary"),
        ({**good(), "message_id": ""}, "message_id: String should have at least 1 character"),
        ({k: v for k, v in good().items() if k != "sent_at"}, "sent_at: Field required"),
        ({**good(), "sent_at": "2026-11-23T10:00:00"}, "sent_at: Input should have timezone"),
        ({**good(), "schema_version": 0}, "schema_version: Input should be greater than"),
        ({**good(), "payload": "text"}, "payload: Input should be a valid dictionary"),
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
        (with_payload(order={"id": "o-1", "amount": "-1"}), "payload.order.amount: Input should"),
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
