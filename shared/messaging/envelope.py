"""The envelope every message travels in, and the base of every payload contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Contract(BaseModel):
    """A message payload (or a part of one): frozen and strict about unknown fields.

    A message's own contract declares its type name and version, once, here; parts of
    messages (an order, a command's arguments) leave `TYPE` empty.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1


def new_message_id() -> str:
    return str(uuid.uuid4())


class Envelope(BaseModel):
    """What every message on the wire looks like; `payload` is validated by its `type`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str = Field(
        min_length=1,
        max_length=200,
        description="Unique id of this message; a re-published copy keeps it (dedup key)",
        examples=["0b7f5c6e-2f7a-4c1e-9d52-5b8f1f0f7a11"],
    )
    type: str = Field(description="Message type, e.g. `ticket.submit` (contracts/asyncapi.yaml)")
    schema_version: int = Field(ge=1, description="Version of the payload's schema")
    correlation_id: str | None = Field(
        None, description="The ticket this message is about, once it has an id"
    )
    causation_id: str | None = Field(None, description="Id of the message that caused this one")
    sent_at: AwareDatetime = Field(description="When the producer sent it")
    producer: str = Field(
        min_length=1, description="Who sent it: a service name or an upstream system"
    )
    payload: dict[str, Any] = Field(description="The message body, per `type`")

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
        return cls(
            message_id=message_id or new_message_id(),
            type=payload.TYPE,
            schema_version=payload.VERSION,
            correlation_id=correlation_id,
            causation_id=causation_id,
            sent_at=sent_at or datetime.now(UTC),
            producer=producer,
            payload=payload.model_dump(mode="json"),
        )
