"""How every CLI action reaches a worker: the command's options, sending it over request/reply
to the queue the catalogue names for its type, and printing the answer.

Operations of a role (`ticketq warehouse ship ...`) are derived from their argument models
(`operation_commands`): one definition per operation, the model; its fields become options,
its docstring the help. A web form can derive from the same model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from services.catalogue import CATALOGUE
from shared.cli.fields import bare, from_pairs, pair_keys, union_members
from shared.cli.output import clean, emit, run
from shared.cli.session import acting_as
from shared.config import Settings, get_settings
from shared.messaging.envelope import Contract, new_message_id
from shared.messaging.rpc import request
from shared.messaging.topology import AUTHORIZATION
from shared.tickets.contracts import CommandReply, OnTicket, OperationArgs, TicketCommand

C = TypeVar("C", bound=BaseModel)
R = TypeVar("R", bound=Contract)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]
TicketId = Annotated[str, typer.Argument(metavar="ID", help="The ticket id")]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="AGENT",
        envvar="TICKETQ_AGENT",
        help="Who you are signed in as (`ticketq login`); default: the last one signed in",
        show_default=False,
    ),
]
VersionOpt = Annotated[
    int | None,
    typer.Option(
        "--version",
        min=1,
        metavar="N",
        help="The version you saw: the command is rejected if the ticket changed since",
    ),
]
CommandIdOpt = Annotated[
    str | None,
    typer.Option(
        "--command-id",
        metavar="ID",
        help="Re-send an earlier command (same id: never applied twice, same answer)",
    ),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the answer")
]


def build(factory: Callable[..., C], **values: Any) -> C:
    """Command arguments from the options; invalid values are a usage error (exit 2).

    An option not given (None) is left to the model's default."""
    values = {name: value for name, value in values.items() if value is not None}
    for name, value in values.items():
        if isinstance(value, str) and not value.strip():
            raise typer.BadParameter(f"{name} must not be blank")
    try:
        return factory(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise typer.BadParameter(problems) from None


def _reply_text(data: Mapping[str, Any]) -> str:
    message = clean(data["message"])
    if not data["accepted"]:
        return f"rejected ({data['code'] or 'rejected'}): {message}"
    extra = []
    if data.get("version") is not None:
        extra.append(f"version {data['version']}")
    if data.get("owner") and clean(data["owner"]) not in message:
        extra.append(f"owner {clean(data['owner'])}")
    return f"accepted: {message}" + (f" ({', '.join(extra)})" if extra else "")


def send(
    message_type: type[OnTicket],
    ticket_id: str,
    actor: str | None,
    args: Contract,
    *,
    version: int | None,
    command_id: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Send one command to the queue the catalogue names for its type, print the answer,
    exit 0 (accepted) or 1 (rejected). No database: the worker finds the ticket."""
    agent, token = acting_as(actor)
    command = build(
        message_type, ticket_id=ticket_id, actor_id=agent, expected_version=version, args=args
    )
    message_id = command_id or new_message_id()
    reply = run(
        send_command(get_settings(), command, token=token, timeout=timeout, message_id=message_id)
    )
    data = {
        "command_id": message_id,
        "queue": queue_of(command),
        **reply.model_dump(mode="json"),
    }
    emit(data, as_json=as_json, text=lambda: _reply_text(data))
    if not reply.accepted:
        raise typer.Exit(1)


# The options every action shares, added to each by `ticket_action`.
_SHARED_OPTIONS = (
    inspect.Parameter("actor", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ActorOpt),
    inspect.Parameter(
        "version", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=VersionOpt
    ),
    inspect.Parameter(
        "command_id", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=CommandIdOpt
    ),
    inspect.Parameter(
        "timeout", inspect.Parameter.KEYWORD_ONLY, default=10.0, annotation=TimeoutOpt
    ),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
)
_TICKET = inspect.Parameter(
    "ticket_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=TicketId
)


def queue_of(command: Contract) -> str:
    return CATALOGUE.of(type(command)).queues[0]


async def ask(
    settings: Settings,
    command: Contract,
    reply_type: type[R],
    *,
    sender: str,
    token: str | None = None,
    correlation_id: str | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - the whole exchange's budget, connect included
    message_id: str | None = None,
    require_consumer: bool = True,
) -> R:
    """Send a command to the queue the catalogue names for its type and wait for its answer
    (see `shared.messaging.rpc.request`). `token`, a session's (`shared.agents.identity`),
    travels in the `authorization` header: the worker acts as its agent."""
    return await request(
        settings,
        queue_of(command),
        command,
        reply_type,
        correlation_id=correlation_id,
        sender=sender,
        timeout=timeout,
        message_id=message_id,
        require_consumer=require_consumer,
        headers={AUTHORIZATION: token} if token else None,
    )


async def send_command(
    settings: Settings,
    command: OnTicket,
    *,
    token: str,
    timeout: float = 10.0,  # noqa: ASYNC109 - the whole exchange's budget, connect included
    message_id: str | None = None,
    require_consumer: bool = True,
) -> CommandReply:
    """A command on a ticket, signed with `token` (the session of `command.actor_id`), and its
    answer."""
    return await ask(
        settings,
        command,
        CommandReply,
        token=token,
        correlation_id=command.ticket_id,
        sender=command.actor_id,
        timeout=timeout,
        message_id=message_id,
        require_consumer=require_consumer,
    )


MakeArgs = Callable[..., Contract]


def ticket_action(
    app: typer.Typer, name: str, message_type: type[OnTicket] = TicketCommand
) -> Callable[[MakeArgs], MakeArgs]:
    """Register `ticketq NAME ID [its options] --as AGENT [--version --command-id --timeout
    --json]`: the decorated function turns its own options into the command's arguments; the
    ticket id, the shared options and the sending are added here, once for every action."""

    def register(make_args: MakeArgs) -> MakeArgs:
        own = inspect.signature(make_args, eval_str=True)

        def command(ticket_id: str, **options: Any) -> None:
            shared = {p.name: options.pop(p.name) for p in _SHARED_OPTIONS}
            send(message_type, ticket_id, shared.pop("actor"), make_args(**options), **shared)

        command.__signature__ = own.replace(  # type: ignore[attr-defined]
            parameters=[_TICKET, *own.parameters.values(), *_SHARED_OPTIONS],
            return_annotation=None,
        )
        command.__doc__ = make_args.__doc__
        app.command(name)(command)
        return make_args

    return register


# --------------------------------------------------------------------------------------------
# Operations derived from their models


def operation_commands(app: typer.Typer, message_type: type[OnTicket]) -> None:
    """Register one `ticketq ROLE OPERATION TICKET HANDOFF_ID [options]` per argument model of
    `message_type.args` (a union tagged by `command`): the model is the one definition."""
    for model in union_members(message_type.model_fields["args"].annotation):
        ticket_action(app, model.model_fields["command"].default.replace("_", "-"), message_type)(
            _args_factory(model)
        )


def _args_factory(model: type[OperationArgs]) -> MakeArgs:
    params = [
        inspect.Parameter(
            "handoff_id",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[
                str, typer.Argument(metavar="HANDOFF_ID", help="The task's handoff id")
            ],
        )
    ]
    for name, info in model.model_fields.items():
        if name not in ("command", "handoff_id"):
            params.append(_option(name, info))

    def make_args(**values: Any) -> Contract:
        fields = {k: from_pairs(model.model_fields[k], v) for k, v in values.items()}
        return build(model, **fields)

    make_args.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    make_args.__doc__ = inspect.cleandoc(model.__doc__ or "")
    return make_args


def _option(name: str, info: FieldInfo) -> inspect.Parameter:
    flag = "--" + name.replace("_", "-")
    kind, extra = _option_type(info.annotation)
    help_text = " ".join(filter(None, [info.description, extra]))
    required = info.is_required()
    if kind is bool:
        option = typer.Option(f"{flag}/--no-{flag[2:]}", help=help_text)
        default: Any = bool(info.default)
    else:
        option = typer.Option(flag, help=help_text, show_default=not required)
        default = ... if required else None
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[kind if required or kind is bool else kind | None, option],
    )


def _option_type(annotation: Any) -> tuple[Any, str]:
    """The option's Python type, and words for its help (choices, list syntax)."""
    annotation = bare(annotation)
    if get_origin(annotation) is Literal:
        return str, f"One of: {', '.join(map(str, get_args(annotation)))}."
    if get_origin(annotation) is list:
        return list[str], f"Repeatable, as {pair_keys(annotation)}."
    if annotation is Decimal:
        return str, "An amount like 59.00."
    if annotation in (bool, int):
        return annotation, ""
    return str, ""
