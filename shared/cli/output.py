"""What every `ticketq` command prints: plain tables or JSON, exit codes, errors.

Exit codes, the same for every command:

| code | meaning                                                                   |
|------|---------------------------------------------------------------------------|
| 0    | done / accepted                                                           |
| 1    | rejected or refused: a business rule, an unknown id, an invalid file      |
| 2    | usage error: a missing or malformed argument (typer/click's own code)     |
| 3    | the broker or the database is unreachable, or no answer came in time      |

Tables are meant for people at a terminal: columns are aligned by *display* width (a Chinese
character takes two cells), and control characters in data (a customer's text could carry
terminal escape sequences) are shown as `?`, never sent to the terminal. `--json` prints the same
data for scripts: one JSON document on stdout, UTF-8, times as ISO 8601.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import unicodedata
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, NoReturn, TypeVar

import typer
from pydantic import BaseModel

from shared.agents.roster import SHOP_TIMEZONE

T = TypeVar("T")

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class CliError(Exception):
    """A failure to report in one line on stderr, with the exit code it means."""

    exit_code = EXIT_REJECTED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Refused(CliError):
    """Refused here, before anything was sent: unknown id, invalid file, not allowed."""

    exit_code = EXIT_REJECTED

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Unreachable(CliError):
    """The broker or the database cannot be reached, or no answer came in time."""

    exit_code = EXIT_UNREACHABLE


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a `CliError` becomes its message on stderr and its exit code."""
    try:
        return asyncio.run(coro)
    except CliError as exc:
        fail(exc)


def fail(exc: CliError) -> NoReturn:
    """Print `exc` on stderr for people and exit with its code."""
    code = getattr(exc, "code", None)
    prefix = f"rejected ({code})" if code else "error"
    typer.echo(f"{prefix}: {exc.message}", err=True)
    raise typer.Exit(exc.exit_code)


# --------------------------------------------------------------------------------------------
# JSON


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data: models, dataclasses, enums, times, decimals, sets."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def to_json(data: Any) -> str:
    return json.dumps(jsonable(data), ensure_ascii=False, indent=2)


def emit(data: Any, *, as_json: bool, text: Callable[[], str] | str) -> None:
    """Print `data` as JSON, or the text rendering of it for people."""
    if as_json:
        typer.echo(to_json(data))
    else:
        typer.echo(text() if callable(text) else text)


# --------------------------------------------------------------------------------------------
# Cells and tables


def shop_time(at: datetime | None, *, seconds: bool = True) -> str:
    """A time as the shop reads it (Asia/Shanghai), e.g. `2026-11-23 10:00:05`."""
    if at is None:
        return "-"
    return at.astimezone(SHOP_TIMEZONE).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M")


def clean(text: str) -> str:
    """One line of printable text: line breaks become spaces, other control characters `?`."""
    out = []
    for ch in text:
        if ch in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u200d":
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)


def cell(value: Any) -> str:
    """How a value looks in a table cell."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return shop_time(value)
    if isinstance(value, Enum):
        return cell(value.value)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return ", ".join(cell(v) for v in items) or "-"
    if isinstance(value, Mapping):
        return clean(json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":")))
    return clean(str(value))


def width(text: str) -> int:
    """Terminal cells `text` takes: wide (CJK) characters two, combining marks none."""
    total = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` cells, with `…` when something was cut."""
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = width(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _pad(text: str, size: int, align: Literal["left", "right"]) -> str:
    fill = " " * max(0, size - width(text))
    return fill + text if align == "right" else text + fill


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: the row key it shows, its header, alignment and widest cell."""

    key: str
    header: str | None = None
    align: Literal["left", "right"] = "left"
    max_width: int | None = None
    format: Callable[[Any], str] | None = None

    @property
    def title(self) -> str:
        return self.header if self.header is not None else self.key.upper().replace("_", " ")


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column | str],
    *,
    empty: str | None = "(none)",
    indent: str = "",
) -> str:
    """Rows as an aligned plain-text table with a header line.

    With no rows: the `empty` text, or the header line alone if `empty` is None.
    """
    if not rows and empty is not None:
        return indent + empty
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    cells = [
        [
            truncate(
                col.format(row.get(col.key)) if col.format else cell(row.get(col.key)),
                col.max_width or 10_000,
            )
            for col in cols
        ]
        for row in rows
    ]
    sizes = [max([width(col.title)] + [width(r[i]) for r in cells]) for i, col in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        padded = [_pad(v, sizes[i], cols[i].align) for i, v in enumerate(values)]
        return (indent + "  ".join(padded)).rstrip()

    return "\n".join([line([c.title for c in cols]), *(line(r) for r in cells)])


def grid(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    empty: str | None = None,
    indent: str = "",
) -> str:
    """`table` for rows given as lists, one value per header, in order."""
    columns = [Column(str(i), header) for i, header in enumerate(headers)]
    keyed = [{str(i): value for i, value in enumerate(row)} for row in rows]
    return table(keyed, columns, empty=empty, indent=indent)


def fields(pairs: Sequence[tuple[str, Any]], *, indent: str = "") -> str:
    """`label  value` lines with the labels aligned, for one record."""
    size = max((width(label) for label, _ in pairs), default=0)
    return "\n".join(
        f"{indent}{_pad(label, size, 'left')}  {cell(value)}" for label, value in pairs
    )
