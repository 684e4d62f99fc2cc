"""`ticketq flows list|show KIND [--version N] [--dot]`: the loaded flows, for people."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from shared.cli.commands import JsonOpt
from shared.cli.output import Column, Refused, emit, fail, table
from shared.flows.load import FlowError
from shared.flows.model import FlowBook, moves
from shared.flows.view import flow_dot, flow_text, question, state_type


def flows_app(load: Callable[[], FlowBook]) -> typer.Typer:
    """The `flows` commands over the flows `load` returns (every desk's)."""
    app = typer.Typer(help="The ticket kinds' paths (flows): list and show.", no_args_is_help=True)

    def book() -> FlowBook:
        try:
            return load()
        except FlowError as exc:
            fail(Refused(f"invalid flow: {exc}", code="invalid_flow"))

    @app.command("list")
    def list_flows(as_json: JsonOpt = False) -> None:
        """Every loaded flow version (the newest of a kind starts new tickets)."""
        rows = [
            {"kind": f.kind, "version": f.version, "title": f.title, "states": len(f.states)}
            for f in book()
        ]
        emit(
            rows,
            as_json=as_json,
            text=lambda: table(
                rows, [Column("kind"), Column("version", "V", align="right"), "title", "states"]
            ),
        )

    @app.command("show")
    def show(
        kind: Annotated[str, typer.Argument(help="The ticket kind, e.g. wrong_item")],
        version: Annotated[
            int | None, typer.Option("--version", min=1, help="Default: the newest")
        ] = None,
        dot: Annotated[bool, typer.Option("--dot", help="A Graphviz dot diagram")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """A flow's states, questions and moves (answer -> next state)."""
        flows = book()
        flow = flows.newest(kind) if version is None else flows.get(kind, version)
        if flow is None:
            known = ", ".join(sorted({f.kind for f in flows}))
            fail(Refused(f"no flow {kind!r}{f' v{version}' if version else ''}; known: {known}"))
        if dot:
            typer.echo(flow_dot(flow))
            return
        data = {
            "kind": flow.kind,
            "version": flow.version,
            "title": flow.title,
            "start": flow.start,
            "loss_reasons": list(flow.loss_reasons),
            "states": {
                s.name: {"type": state_type(s), "question": question(s), "moves": dict(moves(s))}
                for s in flow.states.values()
            },
        }
        emit(data, as_json=as_json, text=lambda: flow_text(flow))

    return app
