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

# Phone numbers inside free text: mainland mobiles and long digit runs that look like numbers.
_PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_CARD_RE = re.compile(r"(?<!\d)\d{4}(?:[- ]?\d{4}){2,3}(?!\d)")


def mask_value(value: object) -> str:
    """Keep only a hint of the value: its first character and, for numbers, the last two."""
    text = str(value)
    if not text:
        return text
    digits = sum(ch.isdigit() for ch in text)
    if digits >= 6:
        return "*" * (len(text) - 2) + text[-2:]
    return text[0] + "***"


# Message ids: their hex groups often hold a run of digits the patterns above would take for
# a card or phone number (about one uuid4 in a hundred), so they are left whole.
_UUID_RE = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)


def mask_text(text: str) -> str:
    """Mask phone and card numbers that appear inside free text (UUIDs excepted)."""
    kept: list[str] = []
    start = 0
    for uuid in _UUID_RE.finditer(text):
        kept += [_mask_numbers(text[start : uuid.start()]), uuid.group()]
        start = uuid.end()
    return "".join(kept) + _mask_numbers(text[start:])


def _mask_numbers(text: str) -> str:
    text = _PHONE_RE.sub(lambda m: mask_value(m.group()), text)
    return _CARD_RE.sub(lambda m: mask_value(m.group()), text)


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
