"""Reading bytes off the wire as JSON, within limits no message of ours comes near.

Used by the runtime's `decode` (a message outside them is refused once, with a reason) and by
the DLQ tool (which shows such a body as raw text instead). Without the limits, 5,000 `[`s made
`json.loads` raise RecursionError and a 5,000-digit integer ValueError, which escaped as
crashes, and deep structures broke whatever walked them later (masking, printing).
"""

from __future__ import annotations

import codecs
import json
from typing import Any

# The deepest contract nests five levels (envelope → payload → order → items → item).
MAX_DEPTH = 32
# No contract has an integer beyond 64 bits; money travels as a decimal string.
MAX_INT_DIGITS = 20
CONTENT_TYPE = "application/json"


class UnreadableJson(ValueError):
    """The bytes are not UTF-8 JSON within the limits; the message says why, without values."""


def read_json(body: bytes) -> Any:
    """The JSON value in `body`: strict UTF-8 (no byte order mark), nested at most
    `MAX_DEPTH` levels, integers of at most `MAX_INT_DIGITS` digits, no NaN or Infinity."""
    if body.startswith(codecs.BOM_UTF8):
        raise UnreadableJson("the body starts with a byte order mark (JSON is UTF-8 without one)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableJson(f"the body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(text, parse_int=_integer, parse_constant=_constant)
    except RecursionError:
        raise UnreadableJson(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and the refusals below
        raise UnreadableJson(str(exc)) from None
    if _too_deep(value):
        raise UnreadableJson(f"nested deeper than {MAX_DEPTH} levels")
    return value


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _too_deep(value: Any) -> bool:
    # Iterative: the point is not to recurse on what an attacker nested. Only containers go on
    # the stack (a ticket's body holds some 40 scalars: pushing them too doubled the walk).
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def is_json_content_type(content_type: str | None) -> bool:
    """`application/json`, perhaps with `charset=utf-8` (any case); nothing else."""
    if content_type is None:
        return False
    media, _, params = content_type.partition(";")
    if media.strip().lower() != CONTENT_TYPE:
        return False
    param = params.strip().lower().replace(" ", "")
    return param in ("", "charset=utf-8")
