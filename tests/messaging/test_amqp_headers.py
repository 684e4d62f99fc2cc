"""The client's header decoding is bounded: no header table can break a worker's connection.

`shared.messaging.amqp_headers.install()` patches pamqp's decoders; these tests decode frame
bytes with pamqp as the connection's reader does (`decode.by_type(..., "table")` for the `headers`
property). The same on the real broker: tests/messaging/test_hostile_input.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pamqp import commands, decode, encode

from shared.messaging.amqp_headers import (
    MAX_DEPTH,
    UNREADABLE_KEY,
    Unreadable,
    install,
    unreadable_headers,
)


def nested(levels: int) -> dict[str, Any]:
    table: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        table = {"x": table}
    return table


def encoded(table: dict[str, Any]) -> bytes:
    """The wire bytes of a table, however deep (pamqp's encoder recurses too)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        return encode.field_table(table)
    finally:
        sys.setrecursionlimit(limit)


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    install()
    install()  # idempotent
    yield


def depth_of(value: Any) -> int:
    levels = 0
    while isinstance(value, dict):
        value, levels = value.get("x", value.get("leaf")), levels + 1
    return levels


def test_a_table_within_the_bound_decodes_as_before() -> None:
    table = {"tq-attempt": 2, "x-death": [{"queue": "intake", "count": 1}], "deep": nested(10)}
    data = encoded(table)
    assert decode.by_type(data, "table") == (len(data), table)


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 3_000, 20_000])
def test_a_table_too_deep_decodes_to_a_marker_in_place_of_the_deep_part(levels: int) -> None:
    data = encoded({"deep": nested(levels), "after": "still read"})
    consumed, headers = decode.by_type(data, "table")
    assert consumed == len(data)
    assert isinstance(headers, dict) and headers["after"] == "still read"
    reason = unreadable_headers(headers)
    assert reason is not None and f"nested deeper than {MAX_DEPTH} levels" in reason
    assert depth_of(headers["deep"]) == MAX_DEPTH - 1  # the rest is the marker


def test_an_array_too_deep_is_bounded_too() -> None:
    value: Any = ["leaf"]
    for _ in range(5_000):
        value = [value]
    data = encoded({"deep": value})
    _, headers = decode.by_type(data, "table")
    assert isinstance(headers, dict) and unreadable_headers(headers) is not None


def test_an_unreadable_table_decodes_to_a_marker_and_the_rest_of_the_frame_is_read() -> None:
    data = encoded({"kk": 1}).replace(b"\x02kk", b"\x02\xff\xfe")  # a key that is not UTF-8
    _, headers = decode.by_type(data + b"tail", "table")
    assert isinstance(headers, dict) and isinstance(headers[UNREADABLE_KEY], Unreadable)
    assert decode.by_type(data + b"tail", "table")[0] == len(data)
    unknown = encoded({"k": 1}).replace(b"\x01kb", b"\x01kQ")  # no such value type
    assert UNREADABLE_KEY in decode.by_type(unknown, "table")[1]  # type: ignore[operator]


def test_a_marker_can_be_published_again() -> None:
    """A dead-lettered copy keeps the headers: the marker is a string on the wire."""
    _, headers = decode.by_type(encoded({"deep": nested(100)}), "table")
    again = commands.Basic.Properties(headers=headers).marshal()  # type: ignore[arg-type]
    assert b"nested deeper than" in again


def test_readable_headers_have_no_reason() -> None:
    assert unreadable_headers({"a": {"b": ["c", {"d": 1}]}}) is None
    assert unreadable_headers(None) is None
