"""A depth bound on the AMQP client's header decoding, so no message can take a worker down.

The broker accepts a message whose header table nests thousands of levels deep. The client
library decodes field tables by recursion (`pamqp.decode.field_table` → `embedded_value` →
`field_table`…), so such a message raised RecursionError inside the connection's frame reader:
the connection died, the worker had no consumer until it reconnected, and the innocent messages
prefetched with it were redelivered towards their delivery limit. An unreadable table (a key
that is not UTF-8, an unknown value type) raised ValueError there just the same.

`install()` (idempotent; called where connections are opened: `shared.messaging.connect` and
the DLQ tool) replaces three entries of pamqp's decoder tables — the decoders of a nested
table (`F`), of an array (`A`) and of a top-level table (the `headers` property) — with the
same decoders wrapped so that:

* a table or array deeper than `MAX_DEPTH` is skipped by its length prefix, never descended
  into, and decodes to an `Unreadable` marker;
* a top-level table that fails to decode is skipped by its length prefix just the same and
  decodes to `{UNREADABLE_KEY: Unreadable(why)}`.

Nothing else of pamqp changes; a table it reads today decodes exactly as before. The runtime
dead-letters a message whose headers hold a marker (`invalid_properties`, see
`unreadable_headers`). `Unreadable` is a `str`, so such headers can be published again
(dead-lettering, replay): the marker stands where the unreadable value was.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pamqp import common
from pamqp import decode as pamqp_decode

# Our own headers nest two levels at most; RabbitMQ's `x-death` three.
MAX_DEPTH = 16
UNREADABLE_KEY = "tq-unreadable-headers"

Decoder = Callable[[bytes], tuple[int, common.FieldValue]]


class Unreadable(str):
    """What stands where a header value could not be decoded; says why."""

    __slots__ = ()


_state = threading.local()
_installed: list[Decoder] = []


def install() -> None:
    """Wrap pamqp's table and array decoders (once per process)."""
    if _installed:
        return
    table, array = pamqp_decode.field_table, pamqp_decode.field_array
    nested_table, nested_array = _bounded(table), _bounded(array)
    top_table = _bounded(table, top_level=True)
    pamqp_decode.TABLE_MAPPING[b"F"] = nested_table
    pamqp_decode.TABLE_MAPPING[b"A"] = nested_array
    pamqp_decode.METHODS["table"] = top_table
    _installed.extend([nested_table, nested_array, top_table])


def _bounded(decoder: Decoder, *, top_level: bool = False) -> Decoder:
    def decode(value: bytes) -> tuple[int, common.FieldValue]:
        depth: int = getattr(_state, "depth", 0)
        if depth >= MAX_DEPTH:
            return _skip(value), Unreadable(f"(a value nested deeper than {MAX_DEPTH} levels)")
        _state.depth = depth + 1
        try:
            return decoder(value)
        except (ValueError, RecursionError) as exc:
            if not top_level:
                raise
            return _skip(value), {UNREADABLE_KEY: Unreadable(f"(unreadable: {exc})")}
        finally:
            _state.depth = depth

    return decode


def _skip(value: bytes) -> int:
    """The bytes a table or array takes (length prefix included), checked against the frame."""
    try:
        length: int = common.Struct.integer.unpack(value[0:4])[0]
    except struct.error as exc:
        raise ValueError("Could not unpack data") from exc
    if 4 + length > len(value):
        raise ValueError("Field table length exceeds available data")
    return 4 + length


def unreadable_headers(headers: Mapping[str, Any] | None) -> str | None:
    """Why a message's headers could not be read in full (the first marker), or None."""
    stack: list[tuple[str, Any]] = list((headers or {}).items())
    while stack:
        key, value = stack.pop()
        if isinstance(value, Unreadable):
            return f"header {key!r}: {value}"
        if isinstance(value, Mapping):
            stack += [(f"{key}.{k}", v) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(f"{key}[{i}]", v) for i, v in enumerate(value)]
    return None
