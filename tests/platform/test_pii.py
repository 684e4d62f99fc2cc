"""Personal data masking (SPEC §10): by key anywhere in a structure, and numbers in text."""

from __future__ import annotations

import sys
import uuid

import pytest
import structlog

from shared.logging import mask_personal_data
from shared.pii import mask, mask_text, mask_value

NAME, PHONE, ADDRESS = "张三丰", "13812345678", "杭州市西湖区文三路 100 号"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (NAME, "张***"),  # a hint: the first character
        (PHONE, "*********78"),  # numbers keep their last two digits
        (ADDRESS, "杭***"),
        ("zhang.sanfeng@example.com", "z***"),
        (6222020200112233, "**************33"),
        ("", ""),
    ],
)
def test_mask_value_keeps_only_a_hint(value: object, masked: str) -> None:
    assert mask_value(value) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"客户电话{PHONE},请回电", "客户电话*********78,请回电"),  # inside Chinese text
        ("call +86 138-1234-5678 today", "call ***************78 today"),
        ("card 6222 0202 0011 2233 paid", "card *****************33 paid"),
        ("card 6222-0202-0011-2233", "card *****************33"),
        ("订单 o-20261123 已付款 59.00 元", "订单 o-20261123 已付款 59.00 元"),  # not personal
        ("ticket T261123-000001 at 2026-11-23T02:00:00Z", None),
        ("taobao order 3456789012345678901", None),  # 19 digits: an order id, not a card
        ("phone 1381234567 (10 digits) is no mobile", None),
        ("12138123456789", None),  # a longer digit run is not a phone
    ],
)
def test_mask_text_masks_phone_and_card_numbers_only(text: str, masked: str | None) -> None:
    assert mask_text(text) == (text if masked is None else masked)


def test_mask_text_leaves_message_ids_whole() -> None:
    """Message ids correlate log lines with dead letters: a uuid whose hex groups form a
    12-digit run (one uuid4 in ~60) was masked like a card number before."""
    digits = "0b7f5c6e-2f7a-4c1e-9d52-123456789012"
    all_digits = "12345678-1234-4567-8901-234567890123"
    assert mask_text(digits) == digits
    assert mask_text(all_digits) == all_digits
    assert mask_text(f"resent-{digits}, from {PHONE}") == f"resent-{digits}, from *********78"
    ids = [str(uuid.uuid4()) for _ in range(5_000)]
    assert [mask_text(i) for i in ids] == ids


def test_mask_walks_nested_structures_by_key_and_text() -> None:
    event = {
        "event": "ticket_received",
        "customer": {"id": "c-1", "nick": "小王", "name": NAME, "Phone": PHONE, "address": ADDRESS},
        "contacts": [
            {"receiver_name": NAME, "mobile": PHONE},
            ({"shipping_address": ADDRESS},),
        ],
        "note": f"回电 {PHONE}",
        "payment": {"alipay_account": "zs@example.com", "card_number": "6222020200112233"},
        "amount": 59.0,
        "name": None,  # nothing to hide
    }
    masked = mask(event)
    assert masked == {
        "event": "ticket_received",
        "customer": {
            "id": "c-1",
            "nick": "小王",
            "name": "张***",
            "Phone": "*********78",
            "address": "杭***",
        },
        "contacts": [
            {"receiver_name": "张***", "mobile": "*********78"},
            [{"shipping_address": "杭***"}],
        ],
        "note": "回电 *********78",
        "payment": {"alipay_account": "z***", "card_number": "**************33"},
        "amount": 59.0,
        "name": None,
    }
    assert event["customer"]["name"] == NAME, "the original is left as it was"  # type: ignore[index]


def test_a_tracebacks_frames_keep_their_function_names_and_lose_numbers() -> None:
    def call_customer(phone: str) -> None:
        raise ConnectionError(f"no answer at {phone}")

    try:
        call_customer(PHONE)
    except ConnectionError:
        exc_info = sys.exc_info()
    event = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )(None, "warning", {"event": "call_failed", "exc_info": exc_info, "name": NAME})
    rendered = mask_personal_data(None, "warning", event)

    [exception] = rendered["exception"]
    assert exception["exc_value"] == "no answer at *********78"
    names = [frame["name"] for frame in exception["frames"]]
    assert names[-1] == "call_customer", "a frame's `name` is a function, not a person"
    assert "test_a_tracebacks_frames_keep_their_function_names_and_lose_numbers" in names
    assert rendered["name"] == "张***"  # outside the traceback, `name` is still personal
    assert PHONE not in repr(rendered) and NAME not in repr(rendered)
