"""Flows for people: where a ticket stands (the read model's `flow` section), a flow as text
(`ticketq flows show KIND`) and as a Graphviz diagram (`--dot`)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from shared.flows.model import TIMEOUT, Ask, End, Flow, FlowPosition, HandOver, State, Wait, moves


def state_type(state: State) -> str:
    match state:
        case Ask():
            return "ask"
        case Wait():
            return "wait"
        case HandOver():
            return "handoff"
        case End():
            return "end"


def question(state: State) -> str:
    match state:
        case Ask() | Wait() | HandOver():
            return state.question
        case End():
            return f"ended: {state.resolution or 'lost (a loss reason from the list)'}"


def duration_text(after: timedelta) -> str:
    minutes = int(after.total_seconds() // 60)
    if minutes % 1440 == 0 and minutes >= 7 * 1440:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def position_view(position: FlowPosition | None, flow: Flow | None) -> dict[str, Any] | None:
    """The current step, its question and the answers it allows (JSON-ready)."""
    if position is None:
        return None
    view: dict[str, Any] = {
        "flow": f"{position.kind} v{position.version}",
        "state": position.state,
        "entered_at": position.entered_at,
        "handoff_id": position.handoff_id,
        "end_reason": position.end_reason,
    }
    if flow is None or position.state not in flow.states:
        missing = "this flow version is not loaded" if flow is None else "not in the loaded flow"
        return {
            **view,
            "type": None,
            "question": f"({missing})",
            "answers": [],
        }
    state = flow.state(position.state)
    view |= {"type": state_type(state), "question": question(state)}
    match state:
        case Ask():
            view["answers"] = list(state.answers)
        case Wait():
            t = state.timeout
            view["answers"] = list(state.answers)
            view["timeout"] = {
                "timer": t.timer,
                "after": duration_text(t.after),
                "due_at": position.entered_at + t.after,
                "then": t.then,
            }
        case HandOver():
            view["answers"] = []
            view["waits_for"] = f"{state.role}: {state.action}"
            view["resumes"] = dict(state.on)
        case End():
            view["answers"] = []
    if isinstance(state, Ask | Wait) and state.guards:
        view["guards"] = {answer: str(guard) for answer, guard in state.guards.items()}
    if any(_is_loss(flow.states[target]) for target in moves(state).values()):
        view["loss_reasons"] = list(flow.loss_reasons)
    return view


def _is_loss(state: State) -> bool:
    return isinstance(state, End) and state.resolution is None


def flow_text(flow: Flow) -> str:
    lines = [f"{flow.kind} v{flow.version}: {flow.title}", f"  start: {flow.start}"]
    if flow.loss_reasons:
        lines.append(f"  loss reasons: {', '.join(flow.loss_reasons)}")
    lines.append(f"  file: {flow.source}")
    for state in flow.states.values():
        lines += ["", f"  {state.name}  [{state_type(state)}]  {question(state)}"]
        match state:
            case Wait():
                t = state.timeout
                lines.append(f"      timeout: {t.timer} after {duration_text(t.after)}")
            case HandOver():
                lines.append(f"      hands to {state.role}: {state.action}")
            case _:
                pass
        for answer, target in moves(state).items():
            lines.append(f"      {answer} -> {target}{_if(state, answer)}")
    return "\n".join(lines)


def _if(state: State, answer: str) -> str:
    guard = state.guards.get(answer) if isinstance(state, Ask | Wait) else None
    return f"  (if {guard})" if guard else ""


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def flow_dot(flow: Flow) -> str:
    """A Graphviz digraph: boxes ask, ellipses wait, hexagons hand-overs, double circles ends."""
    shapes = {"ask": "box", "wait": "ellipse", "handoff": "hexagon", "end": "doublecircle"}
    lines = [
        f"digraph {_quoted(f'{flow.kind}_v{flow.version}')} {{",
        f"  label={_quoted(f'{flow.title} (v{flow.version})')};",
        "  rankdir=LR;",
        f"  start [shape=point]; start -> {_quoted(flow.start)};",
    ]
    for state in flow.states.values():
        label = f"{state.name}\\n{question(state)}"
        lines.append(
            f"  {_quoted(state.name)} [shape={shapes[state_type(state)]}, "
            f"label={_quoted(label).replace(chr(92) * 2, chr(92))}];"
        )
    for state in flow.states.values():
        for answer, target in moves(state).items():
            style = ", style=dashed" if answer == TIMEOUT else ""
            label = _quoted(f"{answer}{_if(state, answer)}")
            lines.append(f"  {_quoted(state.name)} -> {_quoted(target)} [label={label}{style}];")
    lines.append("}")
    return "\n".join(lines)
