"""The CLI's rendering and argument parsing, without servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
import typer

from shared.cli.commands import _reply_text
from shared.cli.output import (
    Column,
    cell,
    clean,
    fields,
    grid,
    jsonable,
    shop_time,
    table,
    to_json,
    truncate,
    width,
)
from shared.pii import mask_detail
from shared.tickets.cli import parse_data, parse_deadline
from shared.tickets.read_model import masked_view

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


class Colour(StrEnum):
    RED = "red"


def test_width_counts_wide_characters_twice() -> None:
    assert width("abc") == 3
    assert width("李娜") == 4
    assert width("小王\uff0c你好\uff01") == 12  # full-width punctuation too
    assert width("e\u0301") == 1  # a combining accent takes no cell


def test_truncate_by_display_width() -> None:
    assert truncate("hello", 10) == "hello"
    assert truncate("hello world", 6) == "hello…"
    cut = truncate("收到的杯子破损了", 7)
    assert cut == "收到的…" and width(cut) <= 7


def test_table_aligns_columns_with_chinese_text() -> None:
    rows = [
        {"id": "a1", "name": "李娜", "n": 3},
        {"id": "zhangwei", "name": "Zhang", "n": 12},
    ]
    text = table(rows, ["id", "name", Column("n", "OPEN", align="right")])
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "NAME", "OPEN"]
    # Every line puts the third column's right edge at the same cell.
    assert len({width(line) for line in lines}) == 1
    assert lines[1].endswith(" 3") and lines[2].endswith("12")
    starts = {width(line[: line.index(str(rows[i]["name"]))]) for i, line in enumerate(lines[1:])}
    assert starts == {width("zhangwei  ")}


def test_table_empty_and_truncated_cells() -> None:
    assert table([], ["id"], empty="no tickets") == "no tickets"
    text = table([{"s": "x" * 50}], [Column("s", max_width=10)], indent="  ")
    assert text.splitlines()[1] == "  " + "x" * 9 + "…"


def test_grid_takes_positional_rows() -> None:
    assert grid(["DLQ", "COUNT"], [["intake.dlq", 3], ["presale.dlq", 12]]).splitlines() == [
        "DLQ          COUNT",
        "intake.dlq   3",
        "presale.dlq  12",
    ]
    assert grid(["DLQ", "COUNT"], []) == "DLQ  COUNT"  # no rows: the header alone


def test_cells() -> None:
    assert cell(None) == "-" and cell("") == "-"
    assert cell(True) == "yes" and cell(False) == "no"
    assert cell(["presale", "supervisor"]) == "presale, supervisor"
    assert cell([]) == "-"
    assert cell(frozenset({"b", "a"})) == "a, b"
    assert cell(Colour.RED) == "red"
    assert cell({"amount": "59.00", "n": 1}) == '{"amount":"59.00","n":1}'
    assert cell(NOW) == "2026-11-23 10:00:00"  # shop local time
    assert cell("two\nlines") == "two lines"


def test_control_characters_never_reach_the_terminal() -> None:
    assert clean("bad\x1b[31mred\x07") == "bad?[31mred?"
    assert clean("tab\there") == "tab here"
    assert "\x1b" not in table([{"s": "\x1b]0;title\x07"}], ["s"])


def test_shop_time() -> None:
    assert shop_time(NOW) == "2026-11-23 10:00:00"
    assert shop_time(NOW, seconds=False) == "11-23 10:00"
    assert shop_time(None) == "-"


def test_fields_align_labels() -> None:
    assert fields([("owner", "x"), ("first handler", None)]).splitlines() == [
        "owner          x",
        "first handler  -",
    ]


def test_json_rendering() -> None:
    data = {"at": NOW, "amount": Decimal("59.00"), "c": Colour.RED, "roles": {"b", "a"}}
    assert jsonable(data) == {
        "at": "2026-11-23T02:00:00+00:00",
        "amount": "59.00",
        "c": "red",
        "roles": ["a", "b"],
    }
    assert json.loads(to_json({"name": "李娜"})) == {"name": "李娜"}
    assert "李娜" in to_json({"name": "李娜"})  # UTF-8, not \\u escapes


def test_parse_data_reads_json_values_and_keeps_decimals_as_text() -> None:
    assert parse_data(
        ["amount=59.00", "boxes=2", "urgent=true", "note=请尽快", "ids=[1,2]", "x=", "e=1e3"]
    ) == {
        "amount": "59.00",
        "boxes": 2,
        "urgent": True,
        "note": "请尽快",
        "ids": [1, 2],
        "x": "",
        "e": "1e3",
    }
    assert parse_data(['q="quoted"', "n=NaN", "eq=a=b"]) == {"q": "quoted", "n": "NaN", "eq": "a=b"}
    assert parse_data(None) == {}
    for bad in (["novalue"], ["=x"], ["a=1", "a=2"]):
        with pytest.raises(typer.BadParameter):
            parse_data(bad)


def test_parse_deadline() -> None:
    assert parse_deadline("+2h", NOW) == NOW + timedelta(hours=2)
    assert parse_deadline("+30m", NOW) == NOW + timedelta(minutes=30)
    naive = parse_deadline("2026-11-23T18:00", NOW)  # shop local time
    assert naive == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert parse_deadline("2026-11-23T12:00:00+00:00", NOW).hour == 12
    for bad in ("tomorrow", "2026-11-23T09:00", "+2w"):
        with pytest.raises(typer.BadParameter):
            parse_deadline(bad, NOW)


def test_mask_detail_masks_customer_data_but_not_agent_names() -> None:
    detail = {
        "owner": {"role": "aftersales", "agent": {"id": "a1", "name": "李娜"}},
        "task": {"action": "reship", "data": {"address": "上海市浦东新区", "name": "王小明"}},
        "note": "call 13812345678",
        "by": {"id": "w1", "name": "陈强"},
    }
    masked = mask_detail(detail)
    assert masked["owner"]["agent"] == {"id": "a1", "name": "李娜"}
    assert masked["by"] == {"id": "w1", "name": "陈强"}
    assert masked["task"]["data"] == {"address": "上***", "name": "王***"}
    assert masked["note"] == "call *********78"


def _view(**over: Any) -> dict[str, Any]:
    agent = {"id": "a1", "name": "李娜"}
    view: dict[str, Any] = {
        "subject": "电话 13812345678",
        "body": "地址: 上海",
        "resolution": None,
        "customer": {"id": "c", "nick": "小王", "name": "王小明", "phone": "13812345678"},
        "order": {"id": "o-1", "amount": "59.00"},
        "attachments": [],
        "owner": {"role": "aftersales", "agent": agent},
        "first_handler": {**agent, "role": "aftersales", "tracking": False},
        "handoffs": [
            {"id": "H1", "data": {"phone": "13812345678"}, "opened_by": agent, "result": None}
        ],
        "escalation": None,
        "contacts": [{"subject": "13812345678", "body": "13812345678"}],
        "history": [
            {"actor_name": "李娜", "reason": "13812345678", "detail": {"owner": {"agent": agent}}}
        ],
    }
    return {**view, **over}


def test_masked_view_hides_every_phone_and_keeps_agents() -> None:
    masked = masked_view(_view())
    text = json.dumps(masked, ensure_ascii=False)
    assert "13812345678" not in text and "王小明" not in text
    assert masked["customer"]["nick"] == "小王"
    assert masked["owner"]["agent"]["name"] == "李娜"
    assert masked["handoffs"][0]["opened_by"]["name"] == "李娜"
    assert masked["history"][0]["detail"]["owner"]["agent"]["name"] == "李娜"


def test_reply_text() -> None:
    accepted = {
        "accepted": True,
        "code": None,
        "message": "Claim accepted; owner: aftersales agent 李娜 (a1)",
        "version": 2,
        "owner": "aftersales agent 李娜 (a1)",
    }
    assert _reply_text(accepted) == (
        "accepted: Claim accepted; owner: aftersales agent 李娜 (a1) (version 2)"
    )
    rejected = {**accepted, "accepted": False, "code": "not_owner", "message": "owned by x"}
    assert _reply_text(rejected) == "rejected (not_owner): owned by x"


def test_an_option_not_given_falls_back_to_the_models_default() -> None:
    from services.warehouse.contracts import ReceiveReturnArgs
    from shared.cli.commands import build

    args = build(ReceiveReturnArgs, handoff_id="T-H1", inspection="passed", notes=None)
    assert args.notes == ""
