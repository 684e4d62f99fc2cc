"""Forms derived from the same pydantic argument models the CLI uses (`shared.cli.commands`):
one definition per command, the model; its fields become inputs, its docstring the help.

A form's values are checked by the model itself before anything is sent: bad input comes back
as errors beside their fields, and no command leaves the web process.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, get_args, get_origin

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from shared.cli.fields import bare, from_pairs, pair_keys, union_members
from shared.tickets.cli import parse_data
from shared.tickets.contracts import OnTicket, OperationArgs

Kind = Literal["text", "textarea", "select", "checkbox", "number", "money", "lines", "pairs"]

# Fields a form fills itself (the operation's tag) or leaves to the page (the task it is for).
_IMPLIED = ("command",)


@dataclass(frozen=True)
class Input:
    """One input of a form: its name (the model's field), label, kind and choices."""

    name: str
    label: str
    kind: Kind
    required: bool
    help: str = ""
    choices: tuple[str, ...] = ()
    default: str = ""


@dataclass(frozen=True)
class Form:
    """A model's form: the command tag, its inputs, the model's docstring as help."""

    name: str
    title: str
    help: str
    model: type[BaseModel]
    inputs: tuple[Input, ...]


@dataclass
class Filled:
    """A form's values as typed, and the model built from them, or the errors by field."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    args: BaseModel | None = None


def form_of(
    model: type[BaseModel],
    *,
    exclude: Iterable[str] = (),
    choices: Mapping[str, Sequence[str]] | None = None,
    title: str | None = None,
) -> Form:
    """The form of `model`: one input per field but `exclude` (and the tag)."""
    skip = {*_IMPLIED, *exclude}
    inputs = tuple(
        _input(name, info, (choices or {}).get(name))
        for name, info in model.model_fields.items()
        if name not in skip
    )
    tag = model.model_fields["command"].default if "command" in model.model_fields else ""
    return Form(
        name=str(tag),
        title=title or str(tag).replace("_", " "),
        help=inspect.cleandoc(model.__doc__ or ""),
        model=model,
        inputs=inputs,
    )


def operation_forms(message_type: type[OnTicket]) -> dict[str, Form]:
    """One form per operation of a role (`message_type.args`, a union tagged by `command`),
    as `operation_commands` derives the CLI's sub-commands."""
    members: list[type[OperationArgs]] = union_members(message_type.model_fields["args"].annotation)
    return {f.name: f for f in (form_of(m) for m in members)}


def _input(name: str, info: FieldInfo, choices: Sequence[str] | None) -> Input:
    value_type = bare(info.annotation)
    required = info.is_required()
    plain = not required and info.default_factory is None and info.default not in (None, "")
    default = str(info.default) if plain else ""
    label = name.replace("_", " ")
    help_text = info.description or ""
    kind: Kind = "text"
    options: tuple[str, ...] = tuple(choices or ())
    if options:
        kind = "select"
    elif get_origin(value_type) is Literal:
        kind, options = "select", tuple(str(a) for a in get_args(value_type))
    elif isinstance(value_type, type) and issubclass(value_type, Enum):
        kind, options = "select", tuple(str(m.value) for m in value_type)
    elif value_type is bool:
        kind = "checkbox"
    elif value_type is int:
        kind = "number"
    elif value_type is Decimal:
        kind, help_text = "money", help_text or "An amount like 59.00"
    elif get_origin(value_type) is list:
        keys = pair_keys(value_type)
        kind, help_text = "lines", _sentences(help_text, f"One per line, as {keys}.")
    elif get_origin(value_type) is dict or value_type is dict:
        kind, help_text = "pairs", _sentences(help_text, "One KEY=VALUE per line.")
    elif any(getattr(m, "max_length", 0) and m.max_length > 300 for m in info.metadata):
        kind = "textarea"
    return Input(name, label, kind, required, help_text, options, default)


def _sentences(*parts: str) -> str:
    return " ".join(p if p.endswith(".") else p + "." for p in parts if p)


def fill(
    form: Form, raw: Mapping[str, str], build: Callable[..., BaseModel] | None = None
) -> Filled:
    """Check `raw` (a submitted form) against the form's model; `build` makes the arguments
    from the parsed values (default: the model itself)."""
    values = {i.name: str(raw.get(i.name, "")).strip() for i in form.inputs}
    filled = Filled(values)
    parsed: dict[str, Any] = {}
    for i in form.inputs:
        text = values[i.name]
        if i.kind == "checkbox":
            parsed[i.name] = text in ("on", "true", "1", "yes")
            continue
        if not text:
            if i.required:
                filled.errors[i.name] = "required"
            continue
        if i.kind == "select" and text not in i.choices:
            filled.errors[i.name] = f"one of: {', '.join(i.choices) or '(none now)'}"
            continue
        try:
            if i.kind == "pairs":
                parsed[i.name] = parse_data(_lines(text), i.name)
            elif i.kind == "lines":
                parsed[i.name] = from_pairs(form.model.model_fields[i.name], _lines(text))
            else:
                parsed[i.name] = text
        except typer.BadParameter as exc:
            filled.errors[i.name] = exc.message
    try:  # even with errors already found: every field's problem is shown at once
        args = (build or form.model)(**parsed)
    except ValidationError as exc:
        for e in exc.errors():
            where = str(e["loc"][0]) if e["loc"] else ""
            if where in values and values[where] == "" and where in filled.errors:
                continue  # "required" already says it
            filled.errors.setdefault(where if where in values else "_form", e["msg"])
    else:
        if not filled.errors:
            filled.args = args
    return filled


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]
