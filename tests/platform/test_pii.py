# ruff: noqa: RUF001  (full-width characters are the input under test)
"""Personal data masking (SPEC §10): by key anywhere in a structure, and numbers in text."""

from __future__ import annotations

import sys
import uuid

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- free text: every format of a phone, card or ID number, names and addresses --------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("手机１３９０７７７６６５５", "手机*********５５"),  # full-width digits
        ("call 139.0777.6655", "call ***********55"),
        ("call 139 0777 6655", "call ***********55"),
        ("call +86 139-0777-6655", "call ***************55"),
        ("call (+86)13907776655", "call **************55"),
        ("座机 021-62345678", "座机 **********78"),
        ("座机 (021)62345678", "座机 ***********78"),
        ("座机（０２１）６２３４５６７８", "座机***********７８"),
        ("座机 0571 8765 4321 转 12", "座机 ************21 转 12"),
        ("卡 6222 0202 0011 2233 123", "卡 *********************23"),
        ("卡 6222020200112233123", "卡 *****************23"),  # 19 digits, UnionPay
        ("身份证 11010119900307123X", "身份证 ****************3X"),
        ("身份证 110101 19900307 1234", "身份证 ******************34"),
    ],
    ids=[
        "full-width",
        "dotted",
        "spaced",
        "plus-86-dashed",
        "bracketed-86",
        "landline-dashed",
        "landline-bracketed",
        "landline-full-width",
        "landline-spaced-extension",
        "card-19-grouped",
        "card-19-unionpay",
        "id-card-x",
        "id-card-spaced",
    ],
)
def test_mask_text_masks_every_number_format(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("你好，我叫张三，想退货", "你好，我叫张***，想退货"),
        ("收件人: 李四 已签收", "收件人: 李*** 已签收"),
        ("收货人：欧阳娜娜", "收货人：欧***"),
        ("姓名 王五", "姓名 王***"),
        ("my name is John Smith.", "my name is J***."),
        ("地址：杭州市西湖区文三路100号，谢谢", "地址：杭***，谢谢"),
        ("请寄到 北京市朝阳区建国路", "请寄到 北***"),
        ("发到上海市徐汇区漕溪北路88号1201室", "******************1室"),
        ("漕溪北路 88 号 3 栋 2 单元", "漕***"),
    ],
    ids=[
        "wo-jiao",
        "receiver",
        "receiver-4",
        "xingming",
        "english",
        "address-cue",
        "send-to",
        "street-room",
        "street-building",
    ],
)
def test_mask_text_masks_names_after_a_cue_and_addresses(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_mask_text_masks_personal_fields_of_json_that_does_not_parse() -> None:
    truncated = '{"customer": {"id": "c-1", "nick": "小王", "name": "张三丰", "address": "杭州市西'
    assert mask_text(truncated) == (
        '{"customer": {"id": "c-1", "nick": "小王", "name": "张***", "address": "杭***'
    )


_SEPARATORS = st.sampled_from(["", " ", "-", "."])
_FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def _grouped(digits: str, sizes: list[int], sep: str) -> str:
    parts, start = [], 0
    for size in sizes:
        parts.append(digits[start : start + size])
        start += size
    return sep.join(p for p in parts if p)


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """A phone, card or ID number as people write them."""
    d = st.text("0123456789", min_size=1, max_size=1)
    kind = draw(st.sampled_from(["mobile", "landline", "card", "id"]))
    sep = draw(_SEPARATORS)
    if kind == "mobile":
        digits = "1" + draw(st.sampled_from("3456789")) + "".join(draw(d) for _ in range(9))
        number = _grouped(digits, [3, 4, 4], sep)
        number = draw(st.sampled_from(["", "+86 ", "+86-", "0086 ", "86", "(+86)"])) + number
    elif kind == "landline":
        area = "0" + "".join(draw(d) for _ in range(draw(st.sampled_from([2, 3]))))
        local = draw(st.sampled_from("23456789")) + "".join(draw(d) for _ in range(7))
        number = (f"({area})" if draw(st.booleans()) else area + sep) + local
    elif kind == "card":
        length = draw(st.sampled_from([16, 19]))
        digits = "62" + "".join(draw(d) for _ in range(length - 2))
        number = _grouped(digits, [4, 4, 4, 4, 3], sep if sep in ("", " ", "-") else " ")
    else:
        year = draw(st.integers(1930, 2020))
        birth = f"{year}{draw(st.integers(1, 12)):02d}{draw(st.integers(1, 28)):02d}"
        region = draw(st.sampled_from("123456789")) + "".join(draw(d) for _ in range(5))
        tail = "".join(draw(d) for _ in range(3)) + draw(st.sampled_from("0123456789X"))
        number = region + birth + tail
    return number.translate(_FULL) if draw(st.booleans()) else number


_AROUND = st.text(st.sampled_from("电话是请回拨谢谢 ，。,:;abcABC"), max_size=12)


@settings(max_examples=500, deadline=None)
@given(numbers(), _AROUND, _AROUND)
def test_masked_text_never_keeps_seven_digits_of_a_number(
    number: str, before: str, after: str
) -> None:
    digits = "".join(ch for ch in number.translate(_ASCII) if ch.isdigit())
    masked = mask_text(f"{before}{number}{after}").translate(_ASCII)
    runs = "".join(ch if ch.isdigit() else " " for ch in masked).split()
    assert not any(digits[i : i + 7] in run for run in runs for i in range(len(digits) - 6)), masked


_ASCII = str.maketrans("０１２３４５６７８９", "0123456789")
