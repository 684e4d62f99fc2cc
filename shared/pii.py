# ruff: noqa: RUF001  (full-width characters are what this module reads)
"""Personal data masking (SPEC §10): name, phone, address and payment details.

One function serves logs and ops output alike, so nothing shows personal data unmasked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Keys whose values are personal data wherever they appear in a structure.
PII_KEYS = frozenset(
    {
        "name",
        "customer_name",
        "receiver",
        "receiver_name",
        "phone",
        "mobile",
        "telephone",
        "address",
        "shipping_address",
        "email",
        "id_card",
        "payment",
        "payment_account",
        "card_number",
        "bank_account",
        "alipay_account",
    }
)


def mask_value(value: object) -> str:
    """Keep only a hint of the value: its first character and, for numbers, the last two."""
    text = str(value)
    if not text:
        return text
    digits = sum(ch.isdigit() for ch in text)
    if digits >= 6:
        return "*" * (len(text) - 2) + text[-2:]
    return text[0] + "***"


# --- free text ------------------------------------------------------------------------------
# Whatever a customer or an agent wrote is masked in ops output and agents' views: each pattern
# below is one way people write personal data. Full-width digits and punctuation are matched as
# their ASCII forms (one character for one, so positions stay the same).
_FULL_WIDTH = str.maketrans("０１２３４５６７８９（）＋－．　：", "0123456789()+-. :")
_SEP = r"[ \-.]?"
# Mainland mobiles: 13x-19x and nine more digits grouped any way (139 0777 6655,
# 139.0777.6655), with or without +86, 0086, (+86).
_MOBILE = r"(?:(?:\(\+?86\)|(?:\+|00)?86)" + _SEP + r")?1[3-9](?:" + _SEP + r"\d){9}"
# Landlines: an area code starting 0, bracketed or not, then 7-8 digits not starting 0 or 1
# (021-62345678, (021)62345678, 0571 8765 4321), perhaps an extension.
_LANDLINE = (
    r"(?:\(0\d{2,3}\)|0\d{2,3})" + _SEP + r"[2-9]\d{2,3}" + _SEP + r"\d{4}(?:(?:-|转)\d{1,6})?"
)
# Resident ID numbers: region, birth date, sequence, check digit or X.
_ID_CARD = (
    r"[1-9]\d{5}"
    + _SEP
    + r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    + _SEP
    + r"\d{3}[\dXx]"
)
# Bank cards: groups of four with separators (the last group may be shorter), or a run of
# digits, which `_is_card` judges (a long run is more often an order id).
_CARD = r"\d{4}(?:[ \-]\d{4}){2,3}(?:[ \-]\d{1,3})?|\d{12,19}"
_NUMBER_RE = re.compile(
    rf"(?<!\d)(?:{_ID_CARD}(?![\dXx])|(?:{_MOBILE}|{_LANDLINE})(?!\d)|(?P<card>{_CARD})(?!\d))"
)
_CJK = r"\u4e00-\u9fff"
# A name after the words that introduce one (我叫张三, 收件人: 李四, 姓名 王五, my name is).
_NAME_RE = re.compile(
    r"(?P<cue>我叫|名字(?:是|叫)|姓名|真名|收件人|收货人|联系人|寄件人|签收人|持卡人|户名"
    r"|(?i:my name is|name\s*:))"
    rf"(?P<gap>\s*[:：]?\s*)(?P<value>[{_CJK}·]{{2,4}}|[A-Z][A-Za-z'\-]*(?: [A-Z][A-Za-z'\-]*)?)"
)
# An address: after the words that introduce one, up to the end of the clause; or a street
# with a house number (省/市/区 before it, 栋/单元/室 after it).
_ADDRESS_CUE_RE = re.compile(
    r"(?P<cue>收货地址|送货地址|家庭住址|地址|住址|住在|寄到|送到|寄往)(?P<gap>\s*[:：]?\s*)"
    r"(?P<value>[^\s,，。;；!！?？、]{2,})"
)
_STREET_RE = re.compile(
    rf"(?:[{_CJK}]{{1,8}}?(?:省|自治区|市|区|县|镇|乡|街道))*"
    rf"[{_CJK}0-9]{{1,12}}?(?:路|街|大道|巷|弄|胡同|村|小区|大厦|花园)"
    r" ?\d+(?:-\d+)? ?(?:号|弄|栋|幢)"
    r"(?: ?[0-9A-Za-z]+(?:-\d+)? ?(?:号楼|号|室|栋|幢|楼|单元|层|户))*"
)
# A personal field in JSON text that could not be parsed (a truncated body): "name": "...
_JSON_FIELD_RE = re.compile(r'"(?P<key>[A-Za-z_]+)"\s*:\s*"(?P<value>(?:[^"\\]|\\.)*)')


def _is_card(digits: str) -> bool:
    """A run of digits taken for a card: 12 or 16 of them, or 17-19 starting 62 (UnionPay)."""
    return len(digits) in (12, 16) or (17 <= len(digits) <= 19 and digits.startswith("62"))


# Message ids: their hex groups often hold a run of digits the patterns above would take for
# a card or phone number (about one uuid4 in a hundred), so they are left whole.
_UUID_RE = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)


def mask_text(text: str) -> str:
    """Mask personal data inside free text (UUIDs excepted): phone, card and ID numbers in
    their common formats (full-width digits too), names after a cue, addresses, and the
    personal fields of JSON text that could not be parsed."""
    kept: list[str] = []
    start = 0
    for uuid in _UUID_RE.finditer(text):
        kept += [_mask_free_text(text[start : uuid.start()]), uuid.group()]
        start = uuid.end()
    return "".join(kept) + _mask_free_text(text[start:])


def _mask_free_text(text: str) -> str:
    text = _JSON_FIELD_RE.sub(_masked_json_field, text)
    text = _NAME_RE.sub(_masked_after_cue, text)
    text = _ADDRESS_CUE_RE.sub(_masked_after_cue, text)
    text = _STREET_RE.sub(lambda m: mask_value(m.group()), text)
    return _mask_numbers(text)


def _masked_json_field(match: re.Match[str]) -> str:
    if match["key"].lower() not in PII_KEYS or not match["value"]:
        return match.group()
    return match.group()[: match.start("value") - match.start()] + mask_value(match["value"])


def _masked_after_cue(match: re.Match[str]) -> str:
    return f"{match['cue']}{match['gap']}{mask_value(match['value'])}"


def _mask_numbers(text: str) -> str:
    # Matched on the ASCII reading, replaced in the original: the positions are the same.
    ascii_text = text.translate(_FULL_WIDTH)
    out: list[str] = []
    start = 0
    for match in _NUMBER_RE.finditer(ascii_text):
        card = match["card"]
        if card is not None and card.isdigit() and not _is_card(card):
            continue
        out += [text[start : match.start()], mask_value(text[match.start() : match.end()])]
        start = match.end()
    return "".join(out) + text[start:]


def mask(obj: Any, *, by_key: bool = True) -> Any:
    """A copy of `obj` with personal data masked, recursively.

    `by_key=False` masks only numbers inside text: for structures whose keys are not data,
    such as a traceback's frames (`name` there is a function's name).
    """
    if isinstance(obj, Mapping):
        return {k: _mask_item(k, v, by_key) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [mask(v, by_key=by_key) for v in obj]
    if isinstance(obj, str):
        return mask_text(obj)
    return obj


def _mask_item(key: object, value: Any, by_key: bool) -> Any:
    if key == "exception":
        return mask(value, by_key=False)
    scalar = value is not None and not isinstance(value, Mapping | list | tuple)
    if by_key and scalar and isinstance(key, str) and key.lower() in PII_KEYS:
        return mask_value(value)
    return mask(value, by_key=by_key)


# Keys under which ticket data holds an agent ({"id", "name"}): their names are not customer data.
_AGENT_KEYS = frozenset(
    {"agent", "by", "opened_by", "taken_by", "responsible", "first_handler", "from", "to"}
)


def mask_detail(value: Any) -> Any:
    """`shared.pii.mask` for structures that also name agents: agent references stay readable."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _AGENT_KEYS and _is_agent_ref(item):
                out[key] = dict(item)
            elif isinstance(item, Mapping | list | tuple):
                out[key] = mask_detail(item)
            else:
                out[key] = mask({key: item})[key]
        return out
    if isinstance(value, list | tuple):
        return [mask_detail(v) for v in value]
    return mask(value)


def _is_agent_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"id", "name"}
