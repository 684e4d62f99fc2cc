"""`ticketq roster load` and `ticketq agent online|offline|list`: the roster (§3).

Changes are commands to a desk worker (`roster.load`, `agent.presence`); `agent list` asks one
(`read.agents`).

The `agents` table holds each agent's id, name, roles, shift names and presence;
`roster_shifts` the shifts a roster file defines (seed 000's day, half_day, night when it
defines none). The shop's time zone is Asia/Shanghai for every service, so a roster file with
another `timezone:` is refused rather than silently half-applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
import yaml

from shared.agents.contracts import LoadRoster, RosterReply, SetPresence
from shared.agents.roster import SHOP_TIMEZONE, Roster, RosterError
from shared.cli.commands import ActorOpt, ask
from shared.cli.output import Column, Refused, emit, fail, run, table
from shared.cli.reads import read
from shared.cli.session import requester
from shared.cli.yamlpath import line_of
from shared.clock import Clock, clock_from_env
from shared.config import get_settings
from shared.tickets.read_requests import ListAgents
from shared.tickets.roles import Role

# Who asks: a supervisor signed in (`ticketq login`); anyone while setting up (issue 12).
RequesterOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="WHO",
        envvar="TICKETQ_AGENT",
        help="Who asks (signed in); default: the last one signed in",
        show_default=False,
    ),
]

roster_app = typer.Typer(help="The roster: agents, their roles and shifts.", no_args_is_help=True)
agent_app = typer.Typer(help="Agents: presence and who is on shift.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]


def clock() -> Clock:
    """The clock that says who is on shift "now": the services' (`TICKETQ_CLOCK_START`)."""
    return clock_from_env()


# --------------------------------------------------------------------------------------------
# roster load


def read_roster(path: Path) -> tuple[Roster, set[str]]:
    """The roster in a YAML file, and the ids of agents whose `online` the file sets.

    Raises `Refused` with where (the line, when it can be found) and what is wrong.
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused(f"{path}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        raise Refused(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise Refused(f"{path}: expected a mapping with `agents:` at the top, got {data!r:.60}")
    try:
        roster = Roster.from_mapping(data)
    except RosterError as exc:
        line = line_of(text, _where(str(exc)))
        raise Refused(f"{path}: {f'line {line}: ' if line else ''}{exc}") from None
    if roster.timezone != SHOP_TIMEZONE:
        raise Refused(
            f"{path}: the services work in {SHOP_TIMEZONE.key}; another `timezone:` cannot be "
            "loaded, remove it"
        )
    sets_online = {
        str(raw["id"])
        for raw in data.get("agents") or []
        if isinstance(raw, Mapping) and "online" in raw
    }
    return roster, sets_online


def _where(error: str) -> str:
    """The YAML path a `RosterError` message starts with (`agents[0].roles: ...`)."""
    if named := re.match(r"(shift|agent) '([^']*)'", error):
        return f"shifts.{named[2]}" if named[1] == "shift" else f"agents[id={named[2]}]"
    return error.split(":", 1)[0]


@roster_app.command("load")
def roster_load(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="The roster, YAML"),
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Remove the agents that are not in the file")
    ] = False,
    actor: RequesterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load agents, roles and shifts from a YAML file (added or updated in one transaction,
    by a desk worker: checked here for where a mistake is, and there again)."""

    try:
        roster, sets_online = read_roster(file)
    except Refused as exc:
        fail(exc)
    who, token = requester(actor)
    reply = run(
        ask(
            get_settings(),
            LoadRoster(
                roster=yaml.safe_load(file.read_text(encoding="utf-8")),
                sets_online=sorted(sets_online),
                replace=replace,
                requested_by=who,
            ),
            RosterReply,
            sender=who,
            token=token,
        )
    )
    if not reply.accepted:
        fail(Refused(reply.message, code=reply.code))
    changes = reply.data
    emit(
        {"file": str(file), **changes},
        as_json=as_json,
        text=lambda: (
            f"loaded {len(roster.agents)} agents from {file}: {len(changes['added'])} added, "
            f"{len(changes['updated'])} updated, {len(changes['removed'])} removed"
            + (f" ({', '.join(changes['removed'])})" if changes["removed"] else "")
        ),
    )


# --------------------------------------------------------------------------------------------
# agent online / offline / list


def _presence(agent_id: str, online: bool, actor: str | None, as_json: bool) -> None:
    who, token = requester(actor)
    reply = run(
        ask(
            get_settings(),
            SetPresence(agent_id=agent_id, online=online, requested_by=who),
            RosterReply,
            sender=who,
            token=token,
        )
    )
    if not reply.accepted:
        fail(Refused(reply.message, code=reply.code))
    emit(reply.data, as_json=as_json, text=lambda: reply.message)


AgentId = Annotated[str, typer.Argument(metavar="ID")]


@agent_app.command("online")
def agent_online(agent_id: AgentId, actor: RequesterOpt = None, as_json: JsonOpt = False) -> None:
    """Mark an agent online: auto-assignment may give them tickets while on shift."""
    _presence(agent_id, True, actor, as_json)


@agent_app.command("offline")
def agent_offline(agent_id: AgentId, actor: RequesterOpt = None, as_json: JsonOpt = False) -> None:
    """Mark an agent offline: auto-assignment passes them by."""
    _presence(agent_id, False, actor, as_json)


@agent_app.command("list")
def agent_list(
    role: Annotated[Role | None, typer.Option("--role", help="Only agents with this role")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every agent: roles, shifts, presence, on shift now, open tickets and tickets tracked.

    OPEN counts the unresolved tickets the agent owns (the load auto-assignment balances);
    TRACKS the unfinished tickets they are first handler of, wherever the work is now.
    """
    answer = read(ListAgents, actor, role=role)  # "now" is the desk's
    at, agents = answer["at"], answer["agents"]
    columns = [
        Column("id"),
        Column("name"),
        Column("roles"),
        Column("shifts"),
        Column("online"),
        Column("on_shift", "ON SHIFT"),
        Column("open_tickets", "OPEN", align="right"),
        Column("tracks", align="right"),
    ]
    emit(
        {"at": at, "agents": agents},
        as_json=as_json,
        text=lambda: table(agents, columns, empty="no agents: load a roster first"),
    )
