"""What an argument model's fields say of their input: the CLI's options
(`shared.cli.commands`) and the workbench's forms (`shared.web.forms`) are both derived from
the same pydantic models, through these."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shared.tickets.contracts import OperationArgs


def bare_annotated(annotation: Any) -> Any:
    """The type under `Annotated[...]`."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def bare(annotation: Any) -> Any:
    """The type under `Annotated[...]` and `X | None`."""
    annotation = bare_annotated(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def union_members(annotation: Any) -> list[type[OperationArgs]]:
    """The argument models of a role's `args` union (one per operation)."""
    return [m for m in get_args(bare_annotated(annotation)) if isinstance(m, type)]


def list_item(annotation: Any) -> type[BaseModel]:
    """The model a list field holds."""
    item = get_args(bare(annotation))[0]
    assert isinstance(item, type) and issubclass(item, BaseModel)
    return item


def pair_keys(annotation: Any) -> str:
    """How one item of a list field is written: its model's fields, e.g. `SKU=QUANTITY`."""
    return "=".join(name.upper() for name in list_item(annotation).model_fields)


def from_pairs(info: FieldInfo, value: Any) -> Any:
    """A list field given as repeated `A=B` texts becomes the list of models it stands for
    (as dicts, for the model to validate); anything else is left as it is."""
    if value is None or not isinstance(value, list):
        return value
    names = list(list_item(info.annotation).model_fields)
    parsed = []
    for text in value:
        parts = text.split("=", len(names) - 1)
        if len(parts) != len(names) or not all(p.strip() for p in parts):
            raise typer.BadParameter(f"expected {pair_keys(info.annotation)}, got {text!r}")
        parsed.append(dict(zip(names, (p.strip() for p in parts), strict=True)))
    return parsed
