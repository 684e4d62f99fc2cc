"""Flows are validated when loaded; an invalid one is refused naming its file and state."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.flows import FLOW_DIRS, load_all
from shared.flows.load import FlowError, load_flows, parse_flow
from shared.flows.model import TIMEOUT, Ask, End, HandOver, Wait
from shared.tickets.roles import TicketKind

BROKEN = Path(__file__).parent / "broken"


def test_every_ticket_kind_with_a_path_has_a_flow() -> None:
    book = load_all()
    kinds = {f.kind for f in book}
    assert kinds == {k.value for k in TicketKind} - {"general_aftersales"}
    wrong_item = book.newest("wrong_item")
    assert wrong_item is not None and wrong_item.version == 1
    photos = wrong_item.state("ask_photos")
    assert isinstance(photos, Wait)
    assert (photos.timeout.timer, photos.timeout.after.total_seconds()) == (
        "customer_reply_24h",
        24 * 3600,
    )
    payout = wrong_item.state("payout")
    assert isinstance(payout, HandOver) and (payout.role, payout.action) == ("finance", "payout")


def test_a_flow_file_broken_on_purpose_is_refused() -> None:
    with pytest.raises(FlowError) as refused:
        load_all((*FLOW_DIRS, BROKEN))  # what the workers load, plus the broken file
    message = str(refused.value)
    assert "wrong_item.v2.yaml: state 'verify': " in message
    assert "'shop_error' leads to 'offer_compensatoin', which does not exist" in message


@pytest.mark.parametrize("desk", ["presale", "aftersales"])
def test_a_desk_does_not_build_its_service_on_an_invalid_flow(desk: str) -> None:
    # In a process of its own: the worker module as `ticketq worker` imports it.
    program = (
        "import pathlib\nimport services.flows as flows\n"
        f"flows.FLOW_DIRS = (*flows.FLOW_DIRS, pathlib.Path({str(BROKEN)!r}))\n"
        f"import services.{desk}.worker\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode != 0
    assert "FlowError" in run.stderr and "wrong_item.v2.yaml: state 'verify'" in run.stderr


def _flow(**states: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "inquiry",
        "version": 1,
        "title": "t",
        "start": "greet",
        "loss_reasons": ["price_too_high"],
        "states": {
            "greet": {"ask": "Deal?", "answers": {"deal": "won", "no_deal": "lost"}},
            "won": {"end": {"resolution": "deal"}},
            "lost": {"end": {"loss_reason": "required"}},
            **states,
        },
    }


def test_a_minimal_flow_loads() -> None:
    flow = parse_flow(_flow(), "inquiry.v1.yaml")
    assert isinstance(flow.state("greet"), Ask)
    lost = flow.state("lost")
    assert isinstance(lost, End) and lost.resolution is None


@pytest.mark.parametrize(
    ("change", "state", "says"),
    [
        (
            {"orphan": {"ask": "?", "answers": {"x": "won"}}},
            "orphan",
            "not reachable from the start",
        ),
        (
            {
                "greet": {"ask": "?", "answers": {"deal": "won", "no_deal": "lost", "x": "loop"}},
                "loop": {"ask": "?", "answers": {"again": "round"}},
                "round": {"ask": "?", "answers": {"back": "loop"}},
            },
            "loop",
            "no end state can be reached from it",
        ),
        (
            {"greet": {"ask": "?", "answers": {"deal": "nowhere", "no": "won"}}},
            "greet",
            "'deal' leads to 'nowhere', which does not exist",
        ),
        (
            {"greet": {"wait": "photos", "answers": {"got": "won", "no": "lost"}}},
            "greet",
            "timeout: Field required",
        ),
        (
            {"won": {"end": {}}},
            "won",
            "an end state records a reason",
        ),
        (
            {"won": {"end": {"resolution": "deal", "colour": "green"}}},
            "won",
            "end.colour: Extra inputs are not permitted",
        ),
        (
            {"greet": {"ask": "?", "answers": {"deal": "won"}, "handoff": {"role": "finance"}}},
            "greet",
            "exactly one of ask, wait, handoff, end",
        ),
        (
            {
                "greet": {"ask": "?", "answers": {"pay": "pay", "no_deal": "lost"}},
                "pay": {
                    "handoff": {"role": "finance", "action": "refund"},
                    "results": {"done": "won", "failed": "lost"},
                },
            },
            "pay",
            "leads straight to 'won'",
        ),
        (
            {
                "greet": {
                    "wait": "x",
                    "answers": {TIMEOUT: "won", "no_deal": "lost"},
                    "timeout": {"timer": "t_1h", "after": "1h", "then": "won"},
                }
            },
            "greet",
            "'timeout' is the timer's answer",
        ),
        (
            {
                "greet": {
                    "wait": "x",
                    "answers": {"deal": "won", "no_deal": "lost"},
                    "timeout": {"timer": "t_1h", "after": "soon", "then": "won"},
                }
            },
            "greet",
            "timeout.after: String should match pattern",
        ),
        (
            {
                "greet": {
                    "ask": "?",
                    "answers": {
                        "deal": {"to": "won", "when": {"since": "paid_at"}},
                        "no_deal": {"to": "lost", "when": {"since": "paid_at", "over": "24h"}},
                    },
                }
            },
            "greet",
            "every answer has a guard",
        ),
        (
            {
                "greet": {
                    "ask": "?",
                    "answers": {"deal": {"to": "won", "when": {"since": "born_at"}}, "x": "lost"},
                }
            },
            "greet",
            "when.since: Input should be 'placed_at'",
        ),
    ],
)
def test_an_invalid_flow_is_refused_naming_the_state(
    change: dict[str, Any], state: str, says: str
) -> None:
    data = _flow()
    data["states"] |= change
    with pytest.raises(FlowError) as refused:
        parse_flow(data, "inquiry.v1.yaml")
    assert f"inquiry.v1.yaml: state {state!r}: " in str(refused.value)
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"colour": "green"}, "colour: Extra inputs are not permitted"),
        ({"start": "nowhere"}, "the start state 'nowhere' does not exist"),
        ({"kind": "gossip"}, "kind: Input should be"),
        ({"loss_reasons": []}, "state 'lost': a loss needs the flow's loss_reasons list"),
    ],
)
def test_an_invalid_flow_is_refused_naming_the_file(change: dict[str, Any], says: str) -> None:
    with pytest.raises(FlowError) as refused:
        parse_flow(_flow() | change, "inquiry.v1.yaml")
    assert str(refused.value).startswith("inquiry.v1.yaml: ")
    assert says in str(refused.value)


def test_versions_are_files_named_kind_vn_and_the_newest_starts_new_tickets(
    tmp_path: Path,
) -> None:
    shutil.copy(FLOW_DIRS[0] / "inquiry.v1.yaml", tmp_path)
    v2 = _flow() | {"version": 2}
    (tmp_path / "inquiry.v2.yaml").write_text(yaml.safe_dump(v2), encoding="utf-8")
    book = load_flows([tmp_path])
    assert [f.version for f in book] == [1, 2]
    newest = book.newest("inquiry")
    assert newest is not None and newest.version == 2
    assert book.get("inquiry", 1) is not None  # kept for the tickets started on it

    (tmp_path / "inquiry.v3.yaml").write_text(yaml.safe_dump(v2), encoding="utf-8")
    with pytest.raises(FlowError, match="the file says inquiry v2; its name says inquiry v3"):
        load_flows([tmp_path])
