"""Message contracts: the pydantic models are the source of the JSON Schema and AsyncAPI files."""

from shared.models.base import Contract, Envelope
from shared.models.registry import MESSAGE_TYPES, MessageType, message_type_of

__all__ = ["MESSAGE_TYPES", "Contract", "Envelope", "MessageType", "message_type_of"]
