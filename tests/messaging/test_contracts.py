"""The checked-in contract files are what the models generate, and they mean what the models do."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from contracts.generate import (
    ASYNCAPI_FILE,
    CONTRACTS_DIR,
    ENVELOPE_FILE,
    asyncapi_document,
    differing_files,
    generated_files,
    message_schema,
    schema_file,
    stale_files,
)
from services.catalogue import CATALOGUE
from services.intake.client import contact_message_id
from services.intake.contracts import SubmitTicket
from services.intake.worker import SERVICE as INTAKE
from shared.messaging import topology as messaging
from shared.messaging.envelope import Envelope
from shared.messaging.runtime import InvalidMessage, decode
from shared.tickets.contracts import (
    Channel,
    Customer,
    FollowUpAttached,
    HandOffArgs,
    Order,
    OrderItem,
    Priority,
    TicketCommand,
    TicketRouted,
)
from shared.tickets.roles import Role, TicketKind

T0 = datetime(2024, 5, 1, 2, 15, tzinfo=UTC)
TYPES = {kind.name: kind for kind in CATALOGUE.types}
INTAKE_ROUTES = INTAKE.routes["intake"]
README = CONTRACTS_DIR / "README.md"


def a_ticket() -> SubmitTicket:
    return SubmitTicket(
        source="im-gateway",
        external_id="wx-20240501-000123",
        channel=Channel.WANGWANG,
        customer=Customer(id="c-10086", nick="小鱼"),
        order=Order(
            id="2024050112345678",
            amount=Decimal("199.00"),
            paid_at=T0,
            items=[OrderItem(sku="A-1", title="Kettle", quantity=1, unit_price=Decimal("199.00"))],
        ),
        subject="Where is my parcel?",
        text="Paid three days ago, still not shipped.",
        occurred_at=T0,
    )


def samples() -> dict[str, dict[str, Any]]:
    """One valid message of every type, as JSON."""
    envelopes = {
        "ticket.submit": Envelope.wrap(a_ticket(), producer="im-gateway"),
        "ticket.routed": Envelope.wrap(
            TicketRouted(
                ticket_id="T240501-000001",
                kind=TicketKind.URGE_SHIPMENT,
                role=Role.AFTERSALES,
                priority=Priority.NORMAL,
                subject="Where is my parcel?",
                customer_id="c-10086",
                order_id=None,
                routed_at=T0,
            ),
            producer="intake",
            correlation_id="T240501-000001",
        ),
        "ticket.follow_up_attached": Envelope.wrap(
            FollowUpAttached(
                ticket_id="T240501-000001",
                source="im-gateway",
                external_id="wx-2",
                channel=Channel.PHONE,
                subject="Again",
                text="",
                role=Role.AFTERSALES,
                agent_id=None,
                attached_at=T0,
            ),
            producer="intake",
            correlation_id="T240501-000001",
        ),
        "ticket.command": Envelope.wrap(
            TicketCommand(
                ticket_id="T240501-000001",
                actor_id="a-7",
                expected_version=3,
                args=HandOffArgs(role=Role.FINANCE, action="refund", data={"amount": "199.00"}),
            ),
            producer="desk",
            correlation_id="T240501-000001",
        ),
    }
    return {name: e.model_dump(mode="json") for name, e in envelopes.items()}


def readme_example() -> dict[str, Any]:
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, "contracts/README.md has a ```json example of a ticket.submit"
    example: dict[str, Any] = json.loads(blocks[0])
    return example


# --- the files are up to date ---------------------------------------------------------------


def test_checked_in_files_are_what_the_models_generate() -> None:
    differing = differing_files(CONTRACTS_DIR)
    assert not differing, (
        f"contracts/ is out of date: {differing}; run `python -m contracts.generate`"
    )


@pytest.mark.parametrize("path", sorted(generated_files()))
def test_each_file_matches(path: str) -> None:
    assert (CONTRACTS_DIR / path).read_text(encoding="utf-8") == generated_files()[path]


def test_no_stale_schema_files() -> None:
    assert stale_files(CONTRACTS_DIR, generated_files()) == []


def test_generation_is_deterministic() -> None:
    assert generated_files() == generated_files()


def test_there_is_a_schema_per_message_type() -> None:
    files = generated_files()
    for kind in TYPES.values():
        assert schema_file(kind) in files
    assert {ENVELOPE_FILE, ASYNCAPI_FILE} <= set(files)


def _values_of(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        own = [node[key]] if key in node else []
        return own + [x for v in node.values() for x in _values_of(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in _values_of(v, key)]
    return []


def test_message_schema_fixes_type_and_version_and_embeds_the_payload_model() -> None:
    for kind in TYPES.values():
        schema = message_schema(kind)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(schema_file(kind))
        assert schema["properties"]["type"]["const"] == kind.name
        assert schema["properties"]["schema_version"]["const"] == kind.version
        model = kind.model.model_json_schema(mode="validation")
        payload = schema["properties"]["payload"]
        assert payload["title"] == model["title"]
        assert payload["properties"].keys() == model["properties"].keys()
        assert payload.get("required") == model.get("required")
        assert model.get("$defs", {}).keys() <= schema.get("$defs", {}).keys()
        # AsyncAPI's schema takes a discriminator's property name, not OpenAPI's object.
        assert all(isinstance(d, str) for d in _values_of(schema, "discriminator"))
        assert {"type", "schema_version", "payload"} <= set(schema["required"])


# --- the AsyncAPI document ------------------------------------------------------------------


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _local_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _local_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _local_refs(v)]
    return []


def test_asyncapi_file_is_the_document() -> None:
    text = (CONTRACTS_DIR / ASYNCAPI_FILE).read_text(encoding="utf-8")
    assert yaml.safe_load(text) == asyncapi_document()
    assert not re.search(r"[&*]id\d+", text), "no YAML anchors: some tools do not follow them"


def test_asyncapi_references_resolve() -> None:
    document = asyncapi_document()
    for ref in _local_refs(document):
        if ref.startswith("#/"):
            _resolve(document, ref)
        else:
            assert (CONTRACTS_DIR / ref).is_file(), ref


def test_asyncapi_has_every_queue_its_dead_letter_queue_and_messages() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    channels = document["channels"]
    for queue in CATALOGUE.queue_names:
        amqp = channels[queue]["bindings"]["amqp"]
        assert channels[queue]["address"] == queue
        assert amqp["exchange"]["name"] == messaging.EXCHANGE
        assert amqp["x-queue"]["arguments"]["x-queue-type"] == "quorum"
        dlq = channels[messaging.dead_letter_queue(queue)]["bindings"]["amqp"]
        assert dlq["x-bound-to"] == {
            "exchange": messaging.DEAD_LETTER_EXCHANGE,
            "type": "direct",
            "durable": True,
            "routingKey": queue,
        }
    for kind in TYPES.values():
        message = document["components"]["messages"][kind.name]
        assert message["payload"] == {"$ref": schema_file(kind)}
        for queue in kind.queues:
            assert kind.name in channels[queue]["messages"]
            ref = {"$ref": f"#/channels/{queue}/messages/{kind.name}"}
            on_queue = [
                op
                for op in document["operations"].values()
                if op["channel"] == {"$ref": f"#/channels/{queue}"} and ref in op["messages"]
            ]
            assert {op["action"] for op in on_queue} == {"send", "receive"}, kind.name
        if not kind.queues:  # a reply: goes to the queue the request names in `reply_to`
            assert kind.name in channels["reply_to"]["messages"]


def test_a_request_type_declares_its_reply() -> None:
    document = asyncapi_document()
    for kind in TYPES.values():
        reply = TYPES.get(f"{kind.name}_reply")
        if reply is None or reply.queues:
            continue
        for queue in kind.queues:
            operation = document["operations"][f"send.{queue}.{kind.name}"]
            assert operation["reply"]["messages"] == [
                {"$ref": f"#/channels/reply_to/messages/{reply.name}"}
            ]


def test_dead_letter_reasons_are_the_runtime_enum() -> None:
    """The contract's `tq-dl-reason` enum is exactly what the runtime can set."""
    enum = asyncapi_document()["components"]["schemas"]["deadLetterHeaders"]["properties"][
        messaging.DL_REASON
    ]["enum"]
    assert enum == [reason.value for reason in messaging.DeadLetterReason]


# --- the README example ---------------------------------------------------------------------


def test_readme_example_is_a_valid_ticket_submit_with_the_stable_message_id() -> None:
    example = readme_example()
    envelope = Envelope.model_validate(example)
    ticket = SubmitTicket.model_validate(envelope.payload)
    assert envelope.type == "ticket.submit"
    assert envelope.message_id == contact_message_id(ticket)


# --- sample messages against the schemas (needs jsonschema) ---------------------------------


def _validator(schema: dict[str, Any]) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _errors(schema: dict[str, Any], message: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(schema).iter_errors(message)
    )


@pytest.mark.parametrize("name", sorted(samples()))
def test_valid_samples_pass_their_schema_and_the_envelope(name: str) -> None:
    message = samples()[name]
    assert _errors(message_schema(TYPES[name]), message) == []
    assert _errors(json.loads(generated_files()[ENVELOPE_FILE]), message) == []


def test_checked_in_schema_files_validate_a_ticket_submit() -> None:
    schema = json.loads((CONTRACTS_DIR / schema_file(TYPES["ticket.submit"])).read_text())
    message = Envelope.wrap(a_ticket(), producer="im-gateway").model_dump(mode="json")
    assert _errors(schema, message) == []
    assert _errors(schema, readme_example()) == []


def test_a_command_with_arguments_of_another_command_fails() -> None:
    message = samples()["ticket.command"]
    message["payload"]["args"]["command"] = "close"
    assert _errors(message_schema(TYPES["ticket.command"]), message)


def test_ticket_submit_without_customer_fails_like_the_model() -> None:
    message = samples()["ticket.submit"]
    del message["payload"]["customer"]
    errors = _errors(message_schema(TYPES["ticket.submit"]), message)
    assert errors == ["payload: 'customer' is a required property"]
    with pytest.raises(ValidationError, match="customer"):
        SubmitTicket.model_validate(message["payload"])


@pytest.mark.parametrize(
    ("change", "error", "consumer_rejects"),
    [
        (lambda m: m.update(type="ticket.routed"), "type: 'ticket.submit' was expected", True),
        (lambda m: m.update(schema_version=2), "schema_version: 1 was expected", True),
        (lambda m: m.pop("schema_version"), ": 'schema_version' is a required property", True),
        (lambda m: m.update(surprise=True), "('surprise' was unexpected)", True),
        (lambda m: m["payload"].update(channel="fax"), "payload/channel: 'fax' is not one", True),
        (
            lambda m: m["payload"].update(source="IM Gateway"),
            "payload/source: 'IM Gateway' does not match",
            True,
        ),
        (lambda m: m["payload"]["customer"].update(id=""), "payload/customer/id: ''", True),
        (
            lambda m: m["payload"].update(attachments=[{"url": "u", "kind": "gif"}]),
            "payload/attachments/0/kind: 'gif' does not match",
            True,
        ),
    ],
)
def test_invalid_ticket_submits_fail(change: Any, error: str, consumer_rejects: bool) -> None:
    message = copy.deepcopy(samples()["ticket.submit"])
    change(message)
    errors = _errors(message_schema(TYPES["ticket.submit"]), message)
    assert any(error in e for e in errors), errors
    body = json.dumps(message).encode()
    if consumer_rejects:
        with pytest.raises(InvalidMessage):
            decode(body, INTAKE_ROUTES)
    else:
        decode(body, INTAKE_ROUTES)
