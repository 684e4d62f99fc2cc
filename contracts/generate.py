"""Generate the contract files under `contracts/` from the pydantic models.

    python -m contracts.generate           # (re)write the files
    python -m contracts.generate --check   # exit 1, listing the files that are out of date

Everything is derived from `services.catalogue.CATALOGUE`, `Envelope` and the topology constants
of `shared.messaging`; the functions building the documents are pure and their output is
deterministic (byte-identical on every run), so the checked-in files can be compared in tests.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import BaseModel

from services.catalogue import CATALOGUE
from services.intake.client import INTAKE_QUEUE
from shared.config import Settings
from shared.messaging import topology as messaging
from shared.messaging.catalogue import MessageType
from shared.messaging.envelope import Envelope

JsonObject = dict[str, Any]

MESSAGE_TYPES = {kind.name: kind for kind in CATALOGUE.types}

CONTRACTS_DIR = Path(__file__).resolve().parent

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# An identifier, not a download address: the files are in this directory.
SCHEMA_BASE_URI = "https://ticketq.example/contracts/"
# Version of the whole contract (AsyncAPI `info.version`): bump the major when a message type
# gets a new version or a queue goes away, the minor when a type or queue is added.
API_VERSION = "1.0.0"
AMQP_BINDING_VERSION = "0.3.0"
CONTENT_TYPE = "application/json"
GENERATED_NOTE = (
    "Generated from services/catalogue.py and its contracts by `python -m contracts.generate`;"
    " do not edit."
)

ENVELOPE_FILE = "envelope.json"
ASYNCAPI_FILE = "asyncapi.yaml"
SCHEMAS_DIR = "schemas"

# Why a ticketq service dead-lettered a message: one list, in shared.messaging.
DEAD_LETTER_REASONS: dict[str, str] = {
    reason.value: text for reason, text in messaging.DEAD_LETTER_REASONS.items()
}

# Dead-lettering by the broker itself (no `tq-dl-*` headers): RabbitMQ's `x-first-death-reason`.
BROKER_DEAD_LETTER_REASONS: dict[str, str] = {
    "delivery_limit": (
        "delivered more times than the queue's `x-delivery-limit` without an ack"
        " (a message that crashes its consumer)"
    ),
    "rejected": "rejected by a consumer without requeue",
}


def _explain(reasons: Mapping[str, str]) -> str:
    return " ".join(f"`{name}`: {text}." for name, text in reasons.items())


# --- JSON Schema ----------------------------------------------------------------------------


def schema_file(kind: MessageType) -> str:
    """Path of a message type's schema, relative to `contracts/`."""
    return f"{SCHEMAS_DIR}/{kind.name}.v{kind.version}.json"


def envelope_schema() -> JsonObject:
    """The generic envelope every message travels in (`payload` checked per `type`)."""
    schema = _envelope_model_schema()
    rest = {k: v for k, v in schema.items() if k not in ("title", "description")}
    types = ", ".join(f"`{k.name}` v{k.version}" for k in MESSAGE_TYPES.values())
    doc = (Envelope.__doc__ or "").strip().rstrip(".")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URI + ENVELOPE_FILE,
        "$comment": GENERATED_NOTE,
        "title": "ticketq message envelope",
        "description": (
            f"{doc}. Known types: {types}; each has the schema of its whole message in"
            f" `{SCHEMAS_DIR}/<type>.v<schema_version>.json`."
        ),
        **rest,
    }


def _portable(node: Any) -> Any:
    """A pydantic schema with OpenAPI's `discriminator` object reduced to its property name.

    JSON Schema has no `discriminator` (the `oneOf` branches' `const` tags decide already), and
    AsyncAPI's Schema Object defines it as the property's name, so the object form makes the
    AsyncAPI document invalid; the name is what both keep.
    """
    if isinstance(node, dict):
        out = {k: _portable(v) for k, v in node.items()}
        discriminator = out.get("discriminator")
        if isinstance(discriminator, dict) and "propertyName" in discriminator:
            out["discriminator"] = discriminator["propertyName"]
        return out
    if isinstance(node, list):
        return [_portable(v) for v in node]
    return node


def _model_schema(model: type[BaseModel]) -> JsonObject:
    schema: JsonObject = _portable(model.model_json_schema(mode="validation"))
    return schema


def _envelope_model_schema() -> JsonObject:
    return _model_schema(Envelope)


def _without(schema: Mapping[str, Any], *keys: str) -> JsonObject:
    return {k: copy.deepcopy(v) for k, v in schema.items() if k not in keys}


def message_schema(kind: MessageType) -> JsonObject:
    """The whole message of one type as it travels: envelope, `type` and version fixed, payload."""
    envelope = _envelope_model_schema()
    payload = _model_schema(kind.model)
    defs: JsonObject = {}
    for source in (envelope, payload):
        for name, definition in source.get("$defs", {}).items():
            if name in defs and defs[name] != definition:
                raise ValueError(f"{kind.name}: two different schemas named {name!r}")
            defs[name] = definition

    properties: JsonObject = {}
    for name, prop in envelope["properties"].items():
        if name == "type":
            properties[name] = {
                **_without(prop, "examples", "default"),
                "description": f"Message type: `{kind.name}` for this schema",
                "const": kind.name,
            }
        elif name == "schema_version":
            properties[name] = {
                **_without(prop, "examples", "default"),
                "description": f"Version of the payload's schema: {kind.version} for this schema",
                "const": kind.version,
            }
        elif name == "payload":
            properties[name] = _without(payload, "$defs")
        else:
            properties[name] = copy.deepcopy(prop)
    # `schema_version` defaults to 1 in the model; a message saying which version it is
    # stays unambiguous when a version 2 appears, so the per-type schema requires it.
    required = [
        name
        for name in properties
        if name in envelope.get("required", ()) or name in ("type", "schema_version")
    ]
    queues = " or ".join(f"`{q}`" for q in kind.queues)
    schema: JsonObject = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URI + schema_file(kind),
        "$comment": GENERATED_NOTE,
        "title": f"{kind.name} v{kind.version}",
        "description": (
            f"{kind.summary}. The whole message as it travels (routing key {queues} on exchange"
            f" `{messaging.EXCHANGE}`): the ticketq envelope, its `payload` a"
            f" {kind.model.__name__}."
        ),
        **_without(envelope, "title", "description", "properties", "required", "$defs"),
        "properties": properties,
        "required": required,
    }
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


# --- AsyncAPI -------------------------------------------------------------------------------


def _queue_types(queue: str) -> list[MessageType]:
    return [kind for kind in MESSAGE_TYPES.values() if queue in kind.queues]


def _message_id(kind: MessageType) -> str:
    return kind.name


DEAD_LETTERED = "dead_lettered"


def _ref(*path: str) -> JsonObject:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)}


def _dlq_channel_id(queue: str) -> str:
    return messaging.dead_letter_queue(queue)


def _default_settings() -> Settings:
    # Defaults only, never the environment: the document must not depend on where it is built.
    return Settings.model_construct()


_DEFAULT_VHOST = unquote(urlsplit(_default_settings().amqp_url).path.lstrip("/")) or "/"


def message_headers_schema() -> JsonObject:
    return {
        "type": "object",
        "description": "AMQP headers of a message on a work queue; a publisher sets none.",
        "properties": {
            messaging.ATTEMPT: {
                "type": "integer",
                "minimum": 1,
                "description": (
                    "Which pass through the pipeline this is: absent (= 1) on a first"
                    " publish, set by ticketq when a dead-lettered message is replayed."
                ),
            },
        },
    }


def dead_letter_headers_schema() -> JsonObject:
    return {
        "type": "object",
        "description": (
            "AMQP headers of a dead-lettered message. A ticketq service that refuses or fails a"
            " message sets every `tq-dl-*` header. A message the broker dead-lettered has none"
            " of them but `x-death` and `x-first-death-reason`: "
            + _explain(BROKER_DEAD_LETTER_REASONS)
        ),
        "properties": {
            messaging.DL_REASON: {
                "type": "string",
                "enum": list(DEAD_LETTER_REASONS),
                "description": "Why it was dead-lettered. " + _explain(DEAD_LETTER_REASONS),
            },
            messaging.DL_ERROR: {
                "type": "string",
                "maxLength": 2000,
                "description": "What exactly was wrong, for a person to read.",
            },
            messaging.DL_QUEUE: {
                "type": "string",
                "enum": list(CATALOGUE.queue_names),
                "description": "The work queue it was taken from.",
            },
            messaging.DL_ATTEMPTS: {
                "type": "integer",
                "minimum": 1,
                "description": f"The `{messaging.ATTEMPT}` it failed on.",
            },
            messaging.DL_AT: {
                "type": "string",
                "format": "date-time",
                "description": "When it was dead-lettered (ISO 8601, UTC).",
            },
            messaging.DL_SERVICE: {
                "type": "string",
                "description": "The ticketq service that dead-lettered it.",
            },
            messaging.ATTEMPT: message_headers_schema()["properties"][messaging.ATTEMPT],
            "x-first-death-reason": {
                "type": "string",
                "description": "Set by RabbitMQ when the broker dead-lettered the message.",
                "examples": list(BROKER_DEAD_LETTER_REASONS),
            },
            "x-first-death-queue": {
                "type": "string",
                "description": "Set by RabbitMQ: the queue the message died in first.",
            },
            "x-death": {
                "type": "array",
                "description": "Set by RabbitMQ: one entry per queue and reason it died for.",
            },
        },
    }


def _message(kind: MessageType) -> JsonObject:
    return {
        "name": kind.name,
        "title": f"{kind.name} v{kind.version}",
        "summary": kind.summary,
        "description": (kind.model.__doc__ or kind.summary).strip(),
        "contentType": CONTENT_TYPE,
        "headers": _ref("components", "schemas", "messageHeaders"),
        "payload": {"$ref": schema_file(kind)},
        "correlationId": {
            "description": "The ticket the message is about, once it has an id.",
            "location": "$message.payload#/correlation_id",
        },
        "bindings": {
            "amqp": {"messageType": kind.name, "bindingVersion": AMQP_BINDING_VERSION},
        },
    }


def _dead_lettered_message() -> JsonObject:
    return {
        "name": DEAD_LETTERED,
        "title": "Dead-lettered message",
        "summary": "A message a queue's service could not take, with the reason in its headers",
        "description": (
            "The original message, body and properties unchanged (so usually the envelope of one"
            " of the types its queue takes, but possibly not JSON at all), with the headers"
            " saying why and where it died."
        ),
        "headers": _ref("components", "schemas", "deadLetterHeaders"),
        "payload": {"description": "The original body, byte for byte."},
    }


def _work_channel(queue: str, settings: Settings) -> JsonObject:
    kinds = _queue_types(queue)
    takes = ", ".join(f"`{k.name}`" for k in kinds) or "no message type yet"
    return {
        "address": queue,
        "title": queue,
        "description": (
            f"The `{queue}` service's work queue; it takes {takes}. Publish to exchange"
            f" `{messaging.EXCHANGE}` with routing key `{queue}`."
        ),
        "messages": {_message_id(k): _ref("components", "messages", _message_id(k)) for k in kinds},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": messaging.EXCHANGE,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": _DEFAULT_VHOST,
                },
                "x-queue": {
                    "name": queue,
                    "type": "quorum",
                    "durable": True,
                    "exclusive": False,
                    "autoDelete": False,
                    "arguments": messaging.queue_arguments(queue, settings),
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _dead_letter_channel(queue: str) -> JsonObject:
    dlq = messaging.dead_letter_queue(queue)
    return {
        "address": dlq,
        "title": dlq,
        "description": (
            f"Messages the `{queue}` queue's service refused or failed, or that the broker"
            f" dead-lettered; bound to exchange `{messaging.DEAD_LETTER_EXCHANGE}` with routing"
            f" key `{queue}`. Inspect and replay with `ticketq dlq`."
        ),
        "messages": {DEAD_LETTERED: _ref("components", "messages", DEAD_LETTERED)},
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {
                    "name": dlq,
                    "durable": True,
                    "exclusive": False,
                    "autoDelete": False,
                    "vhost": _DEFAULT_VHOST,
                },
                "x-queue-type": "quorum",
                "x-bound-to": {
                    "exchange": messaging.DEAD_LETTER_EXCHANGE,
                    "type": "direct",
                    "durable": True,
                    "routingKey": queue,
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


REPLY_CHANNEL = "reply_to"


def _reply_types() -> list[MessageType]:
    """Types no queue takes: answers sent to the queue a request names in `reply_to`."""
    return [kind for kind in MESSAGE_TYPES.values() if not kind.queues]


def _reply_of(kind: MessageType) -> MessageType | None:
    """The reply to a request type, as the catalogue declares it (a type no queue takes)."""
    return CATALOGUE.of(kind.reply) if kind.reply is not None else None


def _reply_channel() -> JsonObject:
    return {
        "address": None,
        "title": "reply_to",
        "description": (
            "The queue a request names in its AMQP `reply_to` property: a server-named queue"
            f" of the requester's own, bound to exchange `{messaging.REPLY_EXCHANGE}` with its"
            " name as routing key; the answer is published there with that routing key."
        ),
        "messages": {
            _message_id(k): _ref("components", "messages", _message_id(k)) for k in _reply_types()
        },
    }


def _amqp_send_binding() -> JsonObject:
    return {
        "amqp": {
            "deliveryMode": 2,
            "mandatory": True,
            "timestamp": True,
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


_SEND_DESCRIPTION = (
    "Persistent, with publisher confirms and `mandatory`; the envelope's `message_id` is also the"
    " AMQP `message_id` and stays the same when the message is published again, so a second copy"
    " is a no-op."
)


def _send_operation(queue: str, kinds: Sequence[MessageType]) -> JsonObject:
    if queue == INTAKE_QUEUE:
        who = "Upstream systems (IM gateway, shop platform, ...) submit customer contacts."
        tag = "upstream"
    else:
        who = "Published by ticketq's own components; the envelope's `producer` names the sender."
        tag = "internal"
    return {
        "action": "send",
        "channel": _ref("channels", queue),
        "title": f"Publish to {queue}",
        "summary": who,
        "description": _SEND_DESCRIPTION,
        "tags": [{"name": tag}],
        "bindings": _amqp_send_binding(),
        "messages": [_ref("channels", queue, "messages", _message_id(k)) for k in kinds],
    }


def _request_operation(queue: str, kind: MessageType, reply: MessageType) -> JsonObject:
    return {
        "action": "send",
        "channel": _ref("channels", queue),
        "title": f"{kind.name} to {queue}",
        "summary": f"{kind.summary}; the answer is a `{reply.name}`.",
        "description": (
            f"{_SEND_DESCRIPTION} Set the AMQP `reply_to` property to the queue that is to get"
            f" the `{reply.name}`."
        ),
        "tags": [{"name": "request"}],
        "bindings": _amqp_send_binding(),
        "messages": [_ref("channels", queue, "messages", _message_id(kind))],
        "reply": {
            "address": {
                "description": "The request's AMQP `reply_to` property",
                "location": "$message.header#/reply_to",
            },
            "channel": _ref("channels", REPLY_CHANNEL),
            "messages": [_ref("channels", REPLY_CHANNEL, "messages", _message_id(reply))],
        },
    }


def _receive_operation(queue: str) -> JsonObject:
    kinds = _queue_types(queue)
    return {
        "action": "receive",
        "channel": _ref("channels", queue),
        "title": f"{queue} receives",
        "summary": f"The `{queue}` service handles each message once (inbox by `message_id`).",
        "description": (
            "Acked after the service's transaction commits; a message it cannot take goes to"
            f" `{messaging.dead_letter_queue(queue)}` with the reason in `{messaging.DL_REASON}`."
        ),
        "tags": [{"name": "internal"}],
        "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        "messages": [_ref("channels", queue, "messages", _message_id(k)) for k in kinds],
    }


def _reply_operations() -> JsonObject:
    messages = [_ref("channels", REPLY_CHANNEL, "messages", _message_id(k)) for k in _reply_types()]
    return {
        f"send.{REPLY_CHANNEL}": {
            "action": "send",
            "channel": _ref("channels", REPLY_CHANNEL),
            "title": "Reply",
            "summary": "The service that handled a request answers it.",
            "tags": [{"name": "request"}],
            "messages": messages,
        },
        f"receive.{REPLY_CHANNEL}": {
            "action": "receive",
            "channel": _ref("channels", REPLY_CHANNEL),
            "title": "Get the reply",
            "summary": "The requester reads the answer from its `reply_to` queue.",
            "tags": [{"name": "request"}],
            "messages": messages,
        },
    }


def _dead_letter_operation(queue: str) -> JsonObject:
    dlq = messaging.dead_letter_queue(queue)
    return {
        "action": "receive",
        "channel": _ref("channels", _dlq_channel_id(queue)),
        "title": f"{dlq} is inspected",
        "summary": "Operators list, replay or discard dead-lettered messages (`ticketq dlq`).",
        "tags": [{"name": "dead-letter"}],
        "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        "messages": [_ref("channels", _dlq_channel_id(queue), "messages", DEAD_LETTERED)],
    }


def asyncapi_document() -> JsonObject:
    """The AsyncAPI 3.0 description of the whole system: broker, queues, messages, operations."""
    settings = _default_settings()
    channels: JsonObject = {}
    operations: JsonObject = {}
    for queue in CATALOGUE.queue_names:
        channels[queue] = _work_channel(queue, settings)
        channels[_dlq_channel_id(queue)] = _dead_letter_channel(queue)
    if _reply_types():
        channels[REPLY_CHANNEL] = _reply_channel()
    for queue in CATALOGUE.queue_names:
        kinds = _queue_types(queue)
        plain = [k for k in kinds if _reply_of(k) is None]
        if plain:
            operations[f"send.{queue}"] = _send_operation(queue, plain)
        for kind in kinds:
            reply = _reply_of(kind)
            if reply is not None:
                operations[f"send.{queue}.{kind.name}"] = _request_operation(queue, kind, reply)
        if kinds:
            operations[f"receive.{queue}"] = _receive_operation(queue)
    if _reply_types():
        operations.update(_reply_operations())
    for queue in CATALOGUE.queue_names:
        operations[f"receive.{_dlq_channel_id(queue)}"] = _dead_letter_operation(queue)

    messages: JsonObject = {_message_id(k): _message(k) for k in MESSAGE_TYPES.values()}
    messages[DEAD_LETTERED] = _dead_lettered_message()
    unrouted = [k.name for k in MESSAGE_TYPES.values() for q in k.queues if q not in channels]
    if unrouted:
        raise ValueError(f"message types for queues ticketq does not declare: {unrouted}")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ticketq",
            "version": API_VERSION,
            "description": (
                "A shop's customer-service department as asynchronous workers over RabbitMQ."
                f" Every message is a JSON envelope ({ENVELOPE_FILE}) whose `type` and"
                " `schema_version` select the schema of its `payload`"
                f" ({SCHEMAS_DIR}/<type>.v<version>.json). Upstream systems publish"
                f" `ticket.submit` to exchange `{messaging.EXCHANGE}` with routing key"
                f" `{INTAKE_QUEUE}`; see README.md beside this file. {GENERATED_NOTE}"
            ),
            "tags": [
                {"name": "upstream", "description": "What systems outside ticketq publish"},
                {"name": "internal", "description": "Messages between ticketq's components"},
                {"name": "request", "description": "Request/reply: the answer goes to `reply_to`"},
                {"name": "dead-letter", "description": "Messages no service could take"},
            ],
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "rabbitmq": {
                "host": "{host}:5672",
                "pathname": "/{vhost}",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "title": "RabbitMQ",
                "description": (
                    f"RabbitMQ 3.13 or later (quorum queues). Exchanges `{messaging.EXCHANGE}`"
                    f" and `{messaging.DEAD_LETTER_EXCHANGE}` and the queues are declared by"
                    " ticketq; a publisher declares nothing."
                ),
                "variables": {
                    "host": {"default": "localhost", "description": "Broker host name"},
                    "vhost": {"default": _DEFAULT_VHOST, "description": "Virtual host"},
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                "envelope": {"$ref": ENVELOPE_FILE},
                "messageHeaders": message_headers_schema(),
                "deadLetterHeaders": dead_letter_headers_schema(),
            },
            "messages": messages,
        },
    }


# --- files ----------------------------------------------------------------------------------


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_yaml(document: Mapping[str, Any]) -> str:
    # Through JSON first: no object is shared, so the YAML has no anchors and aliases.
    plain = json.loads(json.dumps(document))
    body = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    return f"# {GENERATED_NOTE}\n{body}"


def generated_files() -> dict[str, str]:
    """Every generated file: path relative to `contracts/` -> its exact text."""
    files = {schema_file(k): render_json(message_schema(k)) for k in MESSAGE_TYPES.values()}
    files[ENVELOPE_FILE] = render_json(envelope_schema())
    files[ASYNCAPI_FILE] = render_yaml(asyncapi_document())
    return dict(sorted(files.items()))


def stale_files(root: Path, expected: Iterable[str]) -> list[str]:
    """Schema files on disk that the models no longer generate (a removed type or version)."""
    wanted = set(expected)
    found = sorted(p.relative_to(root).as_posix() for p in (root / SCHEMAS_DIR).glob("*.json"))
    return [path for path in found if path not in wanted]


def differing_files(root: Path = CONTRACTS_DIR) -> list[str]:
    """Generated files missing or different on disk, then stale ones; empty when up to date."""
    files = generated_files()
    differing = [
        path
        for path, text in files.items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]
    return differing + stale_files(root, files)


def write_files(root: Path = CONTRACTS_DIR) -> list[str]:
    """Write what differs, remove stale schemas; returns the paths changed."""
    files = generated_files()
    changed = []
    for path, text in files.items():
        target = root / path
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
        changed.append(path)
    for path in stale_files(root, files):
        (root / path).unlink()
        changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.generate",
        description="Generate contracts/ (JSON Schema, AsyncAPI) from the pydantic models.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of date"
    )
    parser.add_argument("--dir", type=Path, default=CONTRACTS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root: Path = args.dir
    if args.check:
        differing = differing_files(root)
        if differing:
            print("contracts out of date (run `python -m contracts.generate`):", file=sys.stderr)
            for path in differing:
                print(f"  {root / path}", file=sys.stderr)
            return 1
        print(f"contracts up to date ({len(generated_files())} files)")
        return 0
    changed = write_files(root)
    for path in changed:
        print(f"wrote {root / path}" if (root / path).exists() else f"removed {root / path}")
    if not changed:
        print("contracts already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
