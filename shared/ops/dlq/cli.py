"""`ticketq dlq`: inspect, replay and discard dead-lettered messages over AMQP alone.

The logic lives beside it (`letters`: a dead letter and selections; `broker`: reading,
replaying, discarding; `audit`: the audit log); this module parses options and prints. Output is a
plain-text table (or one block per message) by default, JSON with `--json`; times in tables are
shop time (Asia/Shanghai), in JSON ISO 8601 as recorded. Exit codes (`shared.cli.output`): 0 ok,
1 refused or failed (a replay the broker refused, a discard not confirmed, an unknown id, another
dlq command running), 2 usage, 3 broker or database unreachable.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar

import aiormq
import asyncpg
import typer

from shared.cli import output
from shared.cli.output import CliError, Column, clean, emit, fail, fields, shop_time, table, to_json
from shared.config import operator_settings
from shared.ops.dlq.audit import Audit, audit_entries
from shared.ops.dlq.broker import DeadLetters
from shared.ops.dlq.letters import (
    AuditEntry,
    DeadLetter,
    DeadLetterError,
    Filter,
    Outcome,
    Unreachable,
    dead_letter_queue,
    parse_time,
)

dlq_app = typer.Typer(
    help="Dead-letter queues: list, show, peek, group, replay, discard, audit.",
    no_args_is_help=True,
)

T = TypeVar("T")

QueueOpt = Annotated[
    list[str] | None,
    typer.Option("--queue", "-q", help="A queue (intake) or its DLQ (intake.dlq); repeatable"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")]
ReasonOpt = Annotated[
    list[str] | None, typer.Option("--reason", "-r", help="Dead-letter reason; repeatable")
]
TypeOpt = Annotated[
    list[str] | None,
    typer.Option("--type", "-t", help="Message type, e.g. ticket.submit; repeatable"),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="Dead-lettered at or after: ISO 8601 (UTC if no offset) or 30m/2h/7d ago"),
]
UntilOpt = Annotated[str | None, typer.Option(help="Dead-lettered before: same forms as --since")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every dead-lettered message")]
WhoOpt = Annotated[
    str | None, typer.Option(help="Who is doing this, for the audit log (default: your login name)")
]
MessageIdArg = Annotated[
    str | None, typer.Argument(help="One message id (every dead-lettered copy of it)")
]


# --------------------------------------------------------------------------- commands


@dlq_app.command("list")
def list_(
    queue: QueueOpt = None,
    counts_only: Annotated[
        bool, typer.Option("--counts-only", help="Counts only: no message is read")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every dead-letter queue with its count and oldest and newest dead-letter time."""
    queues = _queues(queue)

    async def run(dlq: DeadLetters) -> None:
        rows = await dlq.summaries(queues, scan=not counts_only)
        columns = [
            Column("dlq", "DLQ"),
            Column("messages", align="right"),
            Column("oldest"),
            Column("newest"),
        ]
        emit(
            [r.to_dict() for r in rows],
            as_json=as_json,
            text=lambda: table([vars(r) for r in rows], columns),
        )

    _broker(run)


@dlq_app.command()
def show(
    message_id: Annotated[str, typer.Argument(help="The message id")],
    queue: QueueOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One message (every dead-lettered copy of it): headers, reason, error, masked body."""
    queues = _queues(queue)

    async def run(dlq: DeadLetters) -> None:
        found = await dlq.find(message_id, queues)
        if not found:
            _fail(f"no dead-lettered message with id {message_id!r}")
        if as_json:
            typer.echo(to_json([d.detail() for d in found]))
        else:
            _blocks(found)

    _broker(run)


@dlq_app.command()
def peek(
    queue: Annotated[str, typer.Option("--queue", "-q", help="The queue or its DLQ")],
    n: Annotated[int, typer.Option("-n", min=1, help="How many, from the head")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The first N messages of one DLQ, in full (body masked). Nothing is moved."""
    dlq_name = _queues([queue])[0]

    async def run(dlq: DeadLetters) -> None:
        found = await dlq.peek(dlq_name, n)
        if as_json:
            typer.echo(to_json([d.detail() for d in found]))
        elif not found:
            typer.echo(f"{dlq_name} is empty")
        else:
            _blocks(found)

    _broker(run)


@dlq_app.command()
def group(queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """Counts by reason and message type."""
    queues = _queues(queue)

    async def run(dlq: DeadLetters) -> None:
        rows = [g.to_dict() for g in await dlq.group(queues)]
        columns: list[Column | str] = [
            Column("dlq", "DLQ"),
            "reason",
            "type",
            Column("count", align="right"),
        ]
        emit(rows, as_json=as_json, text=lambda: table(rows, columns, empty="(no dead letters)"))

    _broker(run)


@dlq_app.command()
def replay(
    message_id: MessageIdArg = None,
    queue: QueueOpt = None,
    reason: ReasonOpt = None,
    type_: TypeOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    all_: AllOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would move")] = False,
    who: WhoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish dead-lettered messages back to the queue they came from.

    Same message id (a consumer ignores a copy it already handled), one more attempt.

    The dead-lettered copy is removed only once the broker has confirmed the replayed one.
    """
    selection = _selection(message_id, queue, reason, type_, since, until, all_)
    actor = who or _user()

    async def run(dlq: DeadLetters) -> Outcome:
        if dry_run:
            return await dlq.replay(selection, audit=None, actor=actor, dry_run=True)
        async with Audit.connect(operator_settings()) as audit:
            return await dlq.replay(selection, audit=audit, actor=actor)

    _report(_broker(run), as_json)


@dlq_app.command()
def discard(
    message_id: MessageIdArg = None,
    queue: QueueOpt = None,
    reason: ReasonOpt = None,
    type_: TypeOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    all_: AllOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    who: WhoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drop dead-lettered messages for good (after a confirmation unless --yes)."""
    selection = _selection(message_id, queue, reason, type_, since, until, all_)
    actor = who or _user()

    async def run(dlq: DeadLetters) -> Outcome:
        if dry_run:
            return await dlq.discard(selection, audit=None, actor=actor, dry_run=True)
        only: list[str] | None = None
        if not yes:
            # The lock is kept while asking, so the messages shown are the ones discarded;
            # only those (by id) go, even if more matching ones were dead-lettered meanwhile.
            preview = await dlq.discard(selection, audit=None, actor=actor, dry_run=True)
            only = [d.message_id or "" for d in preview.matched]
            if preview.matched:
                _outcome_table(preview, err=True)
                question = f"Discard these {len(preview.matched)} messages for good?"
                if not await asyncio.to_thread(typer.confirm, question, err=True):
                    _fail("aborted: nothing discarded")
        async with Audit.connect(operator_settings()) as audit:
            return await dlq.discard(selection, audit=audit, actor=actor, only=only)

    _report(_broker(run), as_json)


@dlq_app.command()
def audit(
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The audit log of replays and discards, newest first."""
    entries = _guard(lambda: audit_entries(operator_settings(), limit))
    emit(
        [e.to_dict() for e in entries],
        as_json=as_json,
        text=lambda: table(
            _audit_rows(entries), _AUDIT_COLUMNS, empty="(no replay or discard yet)"
        ),
    )


# --------------------------------------------------------------------------- options


def _queues(values: Sequence[str] | None) -> list[str]:
    try:
        return [dead_letter_queue(v) for v in values or ()]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--queue") from None


def _selection(
    message_id: str | None,
    queues: Sequence[str] | None,
    reasons: Sequence[str] | None,
    types: Sequence[str] | None,
    since: str | None,
    until: str | None,
    all_: bool,
) -> Filter:
    narrowed = bool(message_id or queues or reasons or types or since or until)
    if all_ and narrowed:
        raise typer.BadParameter("--all takes no message id or filter", param_hint="--all")
    if not all_ and not narrowed:
        raise typer.BadParameter(
            "say which messages: a MESSAGE_ID, filters (--queue --reason --type --since "
            "--until) or --all",
            param_hint="MESSAGE_ID",
        )
    _queues(queues)
    return Filter.build(
        message_ids=[message_id] if message_id else [],
        queues=queues or [],
        reasons=reasons or [],
        types=types or [],
        since=_time_option(since, "--since"),
        until=_time_option(until, "--until"),
    )


def _time_option(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


# --------------------------------------------------------------------------- running


def _broker(run: Callable[[DeadLetters], Awaitable[T]]) -> T:
    async def main() -> T:
        async with DeadLetters.connect(operator_settings()) as dlq:
            try:
                return await run(dlq)
            finally:
                for warning in dlq.warnings:
                    typer.echo(f"warning: {clean(warning)}", err=True)

    return _guard(main)


def _guard(main: Callable[[], Awaitable[T]]) -> T:
    """Run a command; an error becomes one line on stderr and its exit code (no traceback:
    a traceback's local variables could hold message bodies)."""
    try:
        return asyncio.run(_awaited(main))
    except (typer.Exit, typer.Abort, typer.BadParameter):
        raise
    except Unreachable as exc:
        fail(output.Unreachable(str(exc)))
    except DeadLetterError as exc:
        fail(CliError(str(exc)))
    except (OSError, TimeoutError, aiormq.exceptions.AMQPConnectionError) as exc:
        fail(output.Unreachable(f"connection lost: {type(exc).__name__}: {exc}"))
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        fail(output.Unreachable(f"database connection lost: {type(exc).__name__}: {exc}"))
    except Exception as exc:
        fail(CliError(f"{type(exc).__name__}: {exc}"))


async def _awaited(main: Callable[[], Awaitable[T]]) -> T:
    return await main()


def _fail(message: str) -> NoReturn:
    fail(CliError(message))


# --------------------------------------------------------------------------- output


def _report(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        typer.echo(to_json(outcome.to_dict()))
    else:
        if outcome.matched:
            _outcome_table(outcome)
        typer.echo(_summary_line(outcome))
    if not outcome.ok:
        _fail(outcome.error or f"{len(outcome.failed)} messages could not be moved")


def _summary_line(outcome: Outcome) -> str:
    verb = "replayed" if outcome.action == "replay" else "discarded"
    matched = len(outcome.matched)
    if outcome.dry_run:
        return f"dry run: {matched} message(s) would be {verb}; nothing moved"
    if outcome.audit_id is None:
        return "nothing matched; nothing moved"
    line = f"{verb} {len(outcome.done)} of {matched} matched"
    if outcome.failed:
        line += f", {len(outcome.failed)} refused and left in place"
    line += f" (audit #{outcome.audit_id})"
    if outcome.interrupted:
        runs = ", ".join(f"#{i}" for i in outcome.interrupted)
        line += f"; earlier run(s) {runs} had been interrupted: marked so in the audit log"
    return line


_MESSAGE_COLUMNS = [
    Column("dlq", "DLQ"),
    Column("position", "POS", align="right"),
    Column("message_id", "MESSAGE ID", max_width=40),
    Column("type"),
    Column("reason"),
    Column("attempts", align="right"),
    Column("dead_lettered_at", "DEAD-LETTERED", format=lambda v: shop_time(_parsed(v))),
]


def _outcome_table(outcome: Outcome, *, err: bool = False) -> None:
    columns = list(_MESSAGE_COLUMNS)
    if outcome.action == "replay":
        columns.append(Column("target", "TO"))
    columns.append(Column("outcome"))
    typer.echo(table(outcome.to_dict()["messages"], columns), err=err)


def _blocks(found: Sequence[DeadLetter]) -> None:
    for i, dead in enumerate(found):
        if i:
            typer.echo("")
        d = dead.detail()
        by = f" by {d['service']}" if d["service"] else ""
        typer.echo(clean(f"{d['dlq']} #{d['position']}  message {d['message_id'] or '-'}"))
        pairs: list[tuple[str, Any]] = [
            ("type", d["type"]),
            ("reason", d["reason"]),
            ("error", d["error"]),
            ("from queue", d["queue"]),
            ("attempts", d["attempts"]),
            ("dead-lettered", f"{shop_time(dead.dead_lettered_at)}{by} ({d['origin']})"),
            ("ticket", d["correlation_id"]),
            ("read count", d["delivery_count"]),
            ("headers", d["headers"]),
        ]
        typer.echo(fields(pairs, indent="  "))
        body = d["body"]
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, indent=2)
        typer.echo("  body:")
        for line in text.splitlines() or [""]:
            typer.echo(f"    {clean(line)}")


def _audit_rows(entries: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        more = len(e.message_ids) - 3
        rows.append(
            {
                **e.to_dict(),
                "started_at": e.started_at,
                "filter": {k: v for k, v in e.filter.items() if k != "all" or v},
                "ids": ",".join(e.message_ids[:3]) + (f",+{more}" if more > 0 else ""),
            }
        )
    return rows


_AUDIT_COLUMNS = [
    Column("id", "ID", align="right"),
    Column("started_at", "STARTED"),
    Column("actor", "WHO"),
    Column("action"),
    Column("status"),
    Column("matched", align="right"),
    Column("succeeded", "DONE", align="right"),
    Column("failed", align="right"),
    Column("filter", max_width=60),
    Column("ids", "MESSAGE IDS", max_width=60),
    Column("error", max_width=60),
]


def _parsed(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
