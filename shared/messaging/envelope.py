"""The envelope every message travels in, and the base of every payload contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

# Ids travel in AMQP properties too (message-id, correlation-id: short strings of at most 255
# bytes): printable ASCII of at most 200 characters always fits, whatever the client library.
MESSAGE_ID_PATTERN = r"^[!-~]{1,200}$"


def _no_nul(model: BaseModel) -> None:
    """Refuse U+0000 in any text of a model's own fields, keys of free-form dicts included
    (PostgreSQL text cannot hold it); nested models check theirs. The path is named, not the
    value. (An `after` validator: a `before` one would make pydantic read JSON input in lax
    Python terms.)"""
    stack: list[tuple[Any, str]] = list(zip(model.__dict__.values(), model.__dict__, strict=True))
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(f"{path or 'a text'} contains U+0000 (NUL), which no text may")
        elif isinstance(item, dict):
            for key, value in item.items():
                stack += [(key, path), (value, f"{path}.{key}" if path else str(key))]
        elif isinstance(item, list):
            stack += [(value, f"{path}[{i}]") for i, value in enumerate(item)]


# Validation context key: the caller has proved that no text in the input holds U+0000, so the
# models skip their walk (`_no_nul`). `runtime.decode` proves it of a JSON body without the six
# bytes `\u0000`: JSON carries U+0000 only so escaped (both parsers refuse a raw control
# character). The walks were some 40% of decoding a ticket (~60 us of ~150 us a message).
NUL_FREE = "nul_free"


def _vouched_nul_free(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(NUL_FREE))


class Contract(BaseModel):
    """A message payload (or a part of one): frozen and strict about unknown fields; no text
    holds U+0000.

    A message's own contract declares its type name and version, once, here; parts of
    messages (an order, a command's arguments) leave `TYPE` empty.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    @model_validator(mode="after")
    def _refuse_nul(self, info: ValidationInfo) -> Self:
        if not _vouched_nul_free(info):
            _no_nul(self)
        return self


def new_message_id() -> str:
    return str(uuid.uuid4())


class Envelope(BaseModel):
    """What every message on the wire looks like; `payload` is validated by its `type`.

    Read in the schema's strict terms: no text anywhere may contain U+0000, and the AMQP
    message must say `content_type: application/json` and hold UTF-8.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str = Field(
        pattern=MESSAGE_ID_PATTERN,
        description="Unique id of this message; a re-published copy keeps it (dedup key)."
        " Printable ASCII, at most 200 characters (it is also the AMQP message-id)",
        examples=["0b7f5c6e-2f7a-4c1e-9d52-5b8f1f0f7a11"],
    )
    type: str = Field(
        min_length=1,
        max_length=100,
        description="Message type, e.g. `ticket.submit` (contracts/asyncapi.yaml)",
    )
    schema_version: int = Field(ge=1, description="Version of the payload's schema")
    correlation_id: str | None = Field(
        None,
        pattern=MESSAGE_ID_PATTERN,
        description="The ticket this message is about, once it has an id",
    )
    causation_id: str | None = Field(
        None, pattern=MESSAGE_ID_PATTERN, description="Id of the message that caused this one"
    )
    sent_at: AwareDatetime = Field(description="When the producer sent it")
    producer: str = Field(
        min_length=1,
        max_length=60,
        description="Who sent it: a service name or an upstream system",
    )
    payload: dict[str, Any] = Field(description="The message body, per `type`")

    @model_validator(mode="after")
    def _refuse_nul(self, info: ValidationInfo) -> Self:
        if not _vouched_nul_free(info):
            _no_nul(self)
        return self

    @classmethod
    def wrap(
        cls,
        payload: Contract,
        *,
        producer: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        message_id: str | None = None,
        sent_at: datetime | None = None,
    ) -> Envelope:
        if not payload.TYPE:
            raise TypeError(f"{type(payload).__name__} is part of a message, not a message")
        # The payload is a validated contract (its own texts checked), the ids' pattern admits
        # no U+0000: only `producer` is left to look at, instead of walking the whole payload.
        return cls.model_validate(
            {
                "message_id": message_id or new_message_id(),
                "type": payload.TYPE,
                "schema_version": payload.VERSION,
                "correlation_id": correlation_id,
                "causation_id": causation_id,
                "sent_at": sent_at or datetime.now(UTC),
                "producer": producer,
                "payload": payload.model_dump(mode="json"),
            },
            context={NUL_FREE: "\x00" not in producer},
        )
