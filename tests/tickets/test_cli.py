"""The agent CLI (`ticketq`) against the real broker, database and workers (SPEC §3, §5).

Each command runs through typer's CliRunner in a thread (it runs its own event loop, like the
real process), with the test's broker and database in its environment; the workers run in this
process on a fixed clock (10:00 in Shanghai, the day shift).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from services.aftersales.worker import SERVICE as AFTERSALES
from services.finance.worker import SERVICE as FINANCE
from services.intake.client import publish_ticket
from services.intake.worker import SERVICE as INTAKE
from services.presale.worker import SERVICE as PRESALE
from services.warehouse.worker import SERVICE as WAREHOUSE
from shared.bootstrap import RunningService, start_service
from shared.cli.commands import send_command
from shared.cli.output import Unreachable
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.messaging.envelope import Envelope
from shared.tickets.contracts import ClaimArgs, CommandReply, Customer, TicketCommand
from shared.tickets.roles import TicketKind
from tests.helpers import T0, add_agents, contact, wait_until
from tests.staff import Cli

# Everyone on the day shift; after-sales and pre-sale staff start offline so that nobody is
# auto-assigned and the CLI's `claim` is what makes the first handler.
ROSTER = """
agents:
  - {id: p1, name: 王芳, roles: [presale], shifts: [day], online: false}
  - {id: a1, name: 李娜, roles: [aftersales], shifts: [day], online: false}
  - {id: a2, name: 张伟, roles: [aftersales], shifts: [day], online: false}
  - {id: w1, name: 陈强, roles: [warehouse], shifts: [day]}
  - {id: f1, name: 杨静, roles: [finance], shifts: [half_day]}
  - {id: s1, name: 赵敏, roles: [supervisor], shifts: [day, night]}
  - {id: n1, name: 刘洋, roles: [aftersales], shifts: [night]}
"""

# The generic desk: a kind with no flow, so a free `resolve` is how the ticket ends.
FREE = TicketKind.GENERAL_AFTERSALES
CUSTOMER = Customer(
    id="c-9", nick="小王", name="王小明", phone="13812345678", address="上海市浦东新区世纪大道100号"
)


@pytest.fixture
def roster_file(tmp_path: Path) -> Path:
    path = tmp_path / "roster.yaml"
    path.write_text(ROSTER, encoding="utf-8")
    return path


@pytest.fixture
async def desks(
    settings: Settings, broker: object, cli: Cli, roster_file: Path
) -> AsyncIterator[FixedClock]:
    """The five workers running on a fixed clock, and the roster loaded by the CLI."""
    clock = FixedClock(T0)
    workers: list[RunningService] = []
    for service in (INTAKE, PRESALE, AFTERSALES, WAREHOUSE, FINANCE):
        workers.append(await start_service(service, settings, clock=clock))
    loaded = await cli("roster", "load", str(roster_file))
    assert loaded.exit_code == 0, loaded
    yield clock
    for worker in workers:
        await worker.stop()


async def new_ticket(settings: Settings, db: Pool, external_id: str, **fields: Any) -> str:
    ticket = contact(external_id, customer=CUSTOMER, **fields)
    await publish_ticket(settings.amqp_url, ticket)

    async def persisted() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) FROM tickets WHERE external_id = $1", external_id)
        )

    await wait_until(persisted, what=f"ticket {external_id}")
    ticket_id = await db.fetchval("SELECT id FROM tickets WHERE external_id = $1", external_id)
    assert isinstance(ticket_id, str)
    return ticket_id


async def history(db: Pool, ticket_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT action FROM ticket_history WHERE ticket_id = $1 ORDER BY id", ticket_id
    )
    return [r["action"] for r in rows]


# --------------------------------------------------------------------------------------------
# Roster and presence


async def test_roster_load_upserts_and_keeps_presence(
    cli: Cli, db: Pool, broker: object, roster_file: Path, tmp_path: Path, desk_worker: None
) -> None:
    first = await cli("roster", "load", str(roster_file))
    assert first.exit_code == 0, first
    assert "loaded 7 agents" in first.stdout and "7 added" in first.stdout
    rows = await db.fetch("SELECT id, name, roles, shifts, online FROM agents ORDER BY id")
    assert [(r["id"], r["name"], r["roles"], r["online"]) for r in rows][:3] == [
        ("a1", "李娜", ["aftersales"], False),
        ("a2", "张伟", ["aftersales"], False),
        ("f1", "杨静", ["finance"], True),
    ]

    assert (await cli("agent", "online", "a1")).exit_code == 0
    went = await cli("agent", "offline", "w1", "--json")
    assert went.exit_code == 0 and went.json() == {"id": "w1", "name": "陈强", "online": False}

    # Loading again: changes names and roles; presence stays unless the file sets it.
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        ROSTER.replace(
            "name: 张伟, roles: [aftersales]", "name: 张伟伟, roles: [aftersales, presale]"
        )
        + "  - {id: x1, name: 新人, roles: [presale], shifts: [night]}\n",
        encoding="utf-8",
    )
    again = await cli("roster", "load", str(changed), "--json")
    assert again.exit_code == 0, again
    assert again.json()["added"] == ["x1"] and len(again.json()["updated"]) == 7
    online = {r["id"]: r["online"] for r in await db.fetch("SELECT id, online FROM agents")}
    assert online["w1"] is False  # set offline by command; the file does not say
    assert online["a1"] is False  # the file says `online: false`
    assert online["x1"] is True  # new, and `online` defaults to true
    a2 = await db.fetchrow("SELECT name, roles FROM agents WHERE id = 'a2'")
    assert a2 is not None and (a2["name"], a2["roles"]) == ("张伟伟", ["aftersales", "presale"])

    # --replace removes the agents the file does not name.
    replaced = await cli("roster", "load", str(roster_file), "--replace")
    assert replaced.exit_code == 0, replaced
    assert "1 removed (x1)" in replaced.stdout
    assert await db.fetchval("SELECT count(*) FROM agents WHERE id = 'x1'") == 0


async def test_replace_refuses_to_remove_an_agent_with_unfinished_tickets(
    cli: Cli, db: Pool, roster_file: Path, tmp_path: Path, desk_worker: None
) -> None:
    assert (await cli("roster", "load", str(roster_file))).exit_code == 0
    await db.execute(
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                               customer_id, customer, subject, body, owner_role, owner_agent_id,
                               first_handler_id, first_handler_role, opened_at)
           VALUES ('T-1', 'quality', 'in_progress', 'wangwang', 'normal', 's', 'e', 'c', '{}',
                   's', 'b', 'aftersales', 'a1', 'a1', 'aftersales', now())"""
    )
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(
        "agents:\n  - {id: s1, name: 赵敏, roles: [supervisor], shifts: [day]}\n",
        encoding="utf-8",
    )
    refused = await cli("roster", "load", str(smaller), "--replace")
    assert refused.exit_code == 1, refused
    assert "a1 (1)" in refused.stderr and "nothing was changed" in refused.stderr
    assert await db.fetchval("SELECT count(*) FROM agents") == 7


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (
            "agents:\n  - {id: a1, name: 李娜, roles: [cook], shifts: [day]}\n",
            "agents[0].roles: unknown role 'cook'",
        ),
        (
            "agents:\n  - {id: a1, name: 李娜, roles: [presale], shifts: [morning]}\n",
            "agent 'a1': unknown shift(s) morning",
        ),
        (
            "agents:\n  - {id: a1, name: x, roles: [presale]}\n"
            "  - {id: a1, name: y, roles: [presale]}\n",
            "duplicate agent id(s): a1",
        ),
        ("agents: [\n", "not valid YAML"),
        ("- a1\n", "expected a mapping with `agents:`"),
        (
            "timezone: Europe/Berlin\n"
            "agents:\n  - {id: a1, name: x, roles: [presale], shifts: [day]}\n",
            "another `timezone:` cannot be loaded",
        ),
    ],
)
async def test_invalid_roster_is_refused_with_where_and_nothing_loaded(
    cli: Cli, db: Pool, tmp_path: Path, content: str, error: str, desk_worker: None
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    result = await cli("roster", "load", str(path))
    assert result.exit_code == 1, result
    assert error in result.stderr and str(path) in result.stderr
    assert await db.fetchval("SELECT count(*) FROM agents") == 0


async def test_roster_load_usage_errors_and_unknown_agent(
    cli: Cli, tmp_path: Path, desk_worker: None
) -> None:
    missing = await cli("roster", "load", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2, missing
    nobody = await cli("agent", "online", "ghost")
    assert nobody.exit_code == 1 and "no agent 'ghost'" in nobody.stderr


async def test_the_demo_roster_loads(cli: Cli, db: Pool, desk_worker: None) -> None:
    demo = resources.files("shared.demo") / "roster.yaml"
    with resources.as_file(demo) as path:
        result = await cli("roster", "load", str(path))
    assert result.exit_code == 0, result
    roles = [r for row in await db.fetch("SELECT roles FROM agents") for r in row["roles"]]
    assert sorted(roles) == sorted(
        ["presale"] * 2 + ["aftersales"] * 2 + ["warehouse", "finance", "supervisor"]
    )


async def test_agent_list_shows_shift_presence_and_load(
    cli: Cli, db: Pool, broker: object, roster_file: Path, desk_worker: None
) -> None:
    assert (await cli("roster", "load", str(roster_file))).exit_code == 0
    listed = await cli("agent", "list", "--json", "--as", "a1")  # any agent signed in
    assert listed.exit_code == 0, listed
    agents = {a["id"]: a for a in listed.json()["agents"]}
    assert agents["a1"]["on_shift"] is True and agents["a1"]["online"] is False
    assert agents["n1"]["on_shift"] is False  # night shift; it is 10:00
    assert agents["f1"]["on_shift"] is True  # half-day starts at 10:00
    assert agents["s1"]["roles"] == ["supervisor"] and agents["a1"]["open_tickets"] == 0
    text = await cli("agent", "list", "--role", "aftersales")  # a1 still signed in
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "ROLES", "SHIFTS"]
    assert [line.split()[0] for line in lines[1:]] == ["a1", "a2", "n1"]
    # Columns line up although the names are Chinese (two cells per character).
    assert len({line.index(" aftersales") for line in lines[1:]}) == 1


# --------------------------------------------------------------------------------------------
# The whole flow through the CLI, against the real workers


async def test_claim_handoff_results_resolve_close_through_the_cli(
    settings: Settings, db: Pool, desks: FixedClock, cli: Cli
) -> None:
    tid = await new_ticket(
        settings, db, "ww-1", subject="收到的杯子破损了", order_id="o-1", kind=FREE
    )
    listed = await cli("tickets", "list", "--waiting-for", "a1", "--json", "--as", "a1")
    assert [t["id"] for t in listed.json()] == [tid]
    assert listed.json()[0]["owner"] == {"role": "aftersales", "agent": None}

    claimed = await cli("claim", tid, "--as", "a1")
    assert claimed.exit_code == 0, claimed
    assert claimed.stdout.startswith("accepted: ")
    assert "李娜 (a1)" in claimed.stdout

    stranger = await cli("claim", tid, "--as", "a2")
    assert stranger.exit_code == 1, stranger
    assert stranger.stdout.startswith("rejected (not_owner): ")
    assert "李娜 (a1)" in stranger.stdout  # names the owner

    env = {"TICKETQ_AGENT": "a1"}  # the default for --as
    assert (await cli("reply", tid, "您好,请上传破损照片", env=env)).exit_code == 0
    pick_up = await cli(
        "handoff", tid, "--to", "warehouse", "--action", "pick_up_return",
        "--data", "carrier=SF", "--data", "boxes=2", env=env,
    )  # fmt: skip
    refund = await cli(
        "handoff", tid, "--to", "finance", "--action", "refund", "--data", "amount=59.00",
        "--json", env=env,
    )  # fmt: skip
    assert pick_up.exit_code == 0 and refund.exit_code == 0, (pick_up, refund)
    # Whoever owns the ticket now (the warehouse, since the pick-up), commands on it go to
    # the `tickets` queue, which every desk consumes: the CLI needs no database to send one.
    assert refund.json()["accepted"] is True and refund.json()["queue"] == "desk"

    # While the work is away, a1 tracks it and the list says who waits for what.
    assert [t["id"] for t in (await cli("tickets", "list", "--waiting-for", "w1", "--json")).json()]
    shown = await cli("tickets", "show", tid)
    assert shown.exit_code == 0, shown
    assert "李娜 (a1), aftersales · tracking" in shown.stdout
    state = await db.fetchval("SELECT state FROM tickets WHERE id = $1", tid)
    data = {h["id"]: h["task"]["data"] for h in state["handoffs"]}
    assert data == {f"{tid}-H1": {"carrier": "SF", "boxes": 2}, f"{tid}-H2": {"amount": "59.00"}}

    early_close = await cli("close", tid, "--as", "w1")
    assert early_close.exit_code == 1 and "rejected (not_first_handler)" in early_close.stdout

    first = await cli(
        "result", tid, f"{tid}-H1", "--done", "--data", "tracking=SF123", "--as", "w1"
    )
    assert first.exit_code == 0, first
    back = await cli("result", tid, f"{tid}-H2", "--done", "--data", "refund_id=R-1", "--as", "f1")
    assert back.exit_code == 0, back
    row = await db.fetchrow("SELECT owner_agent_id, status FROM tickets WHERE id = $1", tid)
    assert row is not None and (row["owner_agent_id"], row["status"]) == ("a1", "in_progress")

    assert (await cli("resolve", tid, "退货已取件,已退款 59.00", env=env)).exit_code == 0
    closed = await cli("close", tid, "--json", env=env)
    assert closed.exit_code == 0 and closed.json()["accepted"] is True

    assert await history(db, tid) == [
        "opened", "claimed", "replied", "handed_off", "handed_off", "result_recorded",
        "result_recorded", "resolved", "closed",
    ]  # fmt: skip
    final = await cli("tickets", "show", tid, "--json")
    view = final.json()
    assert (view["status"], view["owner"]["agent"]["id"], view["first_handler"]["id"]) == (
        "closed",
        "a1",
        "a1",
    )
    assert [(h["id"], h["state"], h["result"]["by"]["id"]) for h in view["handoffs"]] == [
        (f"{tid}-H1", "done", "w1"),
        (f"{tid}-H2", "done", "f1"),
    ]
    assert [h["actor_name"] for h in view["history"][1:3]] == ["李娜", "李娜"]
    text = (await cli("tickets", "show", tid)).stdout
    assert "result_recorded" in text and "杨静 (f1)" in text and "history (Asia/Shanghai)" in text
    assert "2026-11-23 10:00:00" in text  # history times are shop local time
    assert tid not in (await cli("tickets", "list", "--json")).stdout  # closed: hidden
    assert tid in (await cli("tickets", "list", "--all", "--status", "closed")).stdout


async def test_version_conflict_and_retry_with_the_same_command_id(
    settings: Settings, db: Pool, desks: FixedClock, cli: Cli
) -> None:
    tid = await new_ticket(settings, db, "ww-2", subject="退货", order_id="o-2")
    env = {"TICKETQ_AGENT": "a1"}
    assert (await cli("claim", tid, "--version", "1", env=env)).exit_code == 0
    stale = await cli("reply", tid, "您好", "--version", "1", env=env)
    assert stale.exit_code == 1 and stale.stdout.startswith("rejected (version_conflict)")

    # The first attempt moves the ticket to the warehouse; the retry may land on another
    # desk's replica: commands are deduplicated system-wide, it gets the first answer.
    args = ("handoff", tid, "--to", "warehouse", "--action", "pick_up", "--command-id", "cmd-42")
    first = await cli(*args, "--json", env=env)
    again = await cli(*args, "--json", env=env)
    assert first.exit_code == again.exit_code == 0, (first, again)
    assert first.json() == again.json()
    assert first.json()["command_id"] == "cmd-42"
    assert await history(db, tid) == ["opened", "claimed", "handed_off"]


async def test_absent_first_handler_view_and_reassignment(
    settings: Settings, db: Pool, desks: FixedClock, cli: Cli
) -> None:
    tid = await new_ticket(settings, db, "ww-3", subject="补偿", order_id="o-3")
    assert (await cli("claim", tid, "--as", "a1")).exit_code == 0
    assert (await cli("agent", "online", "a1")).exit_code == 0
    assert (
        await cli("handoff", tid, "--to", "finance", "--action", "payout", "--as", "a1")
    ).exit_code == 0
    assert (await cli("tickets", "list", "--absent-first-handler", "--json")).json() == []
    assert (await cli("agent", "offline", "a1")).exit_code == 0  # 李娜 left
    assert (await cli("result", tid, f"{tid}-H1", "--failed", "--as", "f1")).exit_code == 0

    absent = await cli("tickets", "list", "--absent-first-handler", "--json")
    assert [(t["id"], t["first_handler"]["absent"]) for t in absent.json()] == [(tid, "offline")]
    text = await cli("tickets", "list", "--absent-first-handler")
    assert "offline" in text.stdout and "李娜 (a1)" in text.stdout

    refused = await cli("reassign", tid, "--to", "a2", "--reason", "x", "--as", "a2")
    assert refused.exit_code == 1 and "rejected (not_owner)" in refused.stdout
    assert (await cli("agent", "online", "a2")).exit_code == 0
    moved = await cli("reassign", tid, "--to", "a2", "--reason", "李娜本周休假", "--as", "s1")
    assert moved.exit_code == 0, moved
    shown = (await cli("tickets", "show", tid, "--json")).json()
    assert shown["first_handler"]["id"] == "a2" and shown["owner"]["agent"]["id"] == "a2"
    last = shown["history"][-1]
    assert (last["action"], last["actor_id"], last["reason"]) == (
        "first_handler_reassigned",
        "s1",
        "李娜本周休假",
    )
    assert (await cli("tickets", "list", "--absent-first-handler", "--json")).json() == []


async def test_escalation_goes_to_the_supervisor_and_is_shown(
    settings: Settings, db: Pool, desks: FixedClock, cli: Cli
) -> None:
    tid = await new_ticket(settings, db, "ww-4", subject="杯子有裂纹,要求三倍赔偿", order_id="o-4")
    assert (await cli("claim", tid, "--as", "a1")).exit_code == 0
    escalated = await cli(
        "escalate", tid, "--category", "excessive_demand", "--problem", "要求三倍赔偿",
        "--actions-taken", "已道歉,提出退款", "--demand", "三倍赔偿", "--responsible", "s1",
        "--deadline", "2026-11-23T18:00", "--customer-info", "phone=13812345678", "--as", "a1",
    )  # fmt: skip
    assert escalated.exit_code == 0, escalated
    shown = await cli("tickets", "show", tid)
    assert "escalated" in shown.stdout and "excessive_demand" in shown.stdout
    assert "赵敏 (s1)" in shown.stdout and "2026-11-23 18:00:00" in shown.stdout
    assert "13812345678" not in shown.stdout  # the customer info is masked
    # Commands on a supervisor-owned ticket go to the first handler's role's worker.
    reply = await cli("reply", tid, "主管正在处理", "--as", "a1", "--json")
    assert reply.exit_code == 0 and reply.json()["queue"] == "desk"

    past = await cli(
        "escalate", tid, "--category", "timer_breach", "--problem", "p", "--actions-taken", "a",
        "--demand", "d", "--responsible", "s1", "--deadline", "2020-01-01T00:00", "--as", "a1",
    )  # fmt: skip
    assert past.exit_code == 2 and "not in the future" in past.stderr


# --------------------------------------------------------------------------------------------
# Reading tickets: masking, reveal, filters


async def test_show_masks_personal_data_and_reveals_only_to_a_supervisor(
    settings: Settings, db: Pool, desks: FixedClock, cli: Cli
) -> None:
    tid = await new_ticket(
        settings, db, "ww-5", subject="地址改成 13812345678 那个", text="我的电话 13812345678"
    )
    shown = await cli("tickets", "show", tid, "--as", "a1")  # any agent signed in
    assert shown.exit_code == 0, shown
    for secret in ("13812345678", "王小明", "世纪大道"):
        assert secret not in shown.stdout
    assert "(personal data masked)" in shown.stdout and "小王 (c-9)" in shown.stdout
    as_json = (await cli("tickets", "show", tid, "--json")).json()
    assert as_json["customer"]["phone"] == "*********78" and as_json["revealed"] is False
    assert "13812345678" not in json.dumps(as_json, ensure_ascii=False)

    listed = await cli("tickets", "list")
    assert "13812345678" not in listed.stdout and tid in listed.stdout

    # a1 signed in (named, or the last one signed in); ghost cannot sign in at all
    for who, why in (
        (["--as", "a1"], "supervisor"),
        ([], "supervisor"),
        (["--as", "ghost"], "not signed in"),
    ):
        refused = await cli("tickets", "show", tid, "--reveal", *who)
        assert refused.exit_code == 1, refused
        assert why in refused.stderr and refused.stdout == ""
    revealed = await cli("tickets", "show", tid, "--reveal", "--json", env={"TICKETQ_AGENT": "s1"})
    assert revealed.exit_code == 0, revealed
    assert revealed.json()["customer"]["phone"] == "13812345678"
    assert revealed.json()["revealed"] is True
    reveals = await db.fetch("SELECT agent_id, ticket_id FROM pii_reveals")
    assert [(r["agent_id"], r["ticket_id"]) for r in reveals] == [("s1", tid)]  # refused: none


FULL_WIDTH_PHONE = "13907776655".translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})


async def test_show_masks_personal_data_in_free_text_in_every_format(
    settings: Settings, db: Pool, desks: FixedClock, cli: Cli
) -> None:
    text = (
        f"我叫李秋水,寄到上海市徐汇区漕溪北路88号1201室,座机(021)62345678,手机{FULL_WIDTH_PHONE},"
        "或者139.0777.6655,身份证11010119900307123X,卡号6222 0202 0011 2233 123"
    )
    tid = await new_ticket(settings, db, "ww-9", subject="收件人: 王语嫣 021-62345678", text=text)
    secrets = ["李秋水", "漕溪北路", "62345678", FULL_WIDTH_PHONE, "139.0777.6655",
               "11010119900307123X", "0202 0011", "王语嫣"]  # fmt: skip
    for args in ([], ["--json"]):
        shown = await cli("tickets", "show", tid, *args, "--as", "a1")
        assert shown.exit_code == 0, shown
        for secret in secrets:
            assert secret not in shown.stdout, (secret, args)
    revealed = await cli("tickets", "show", tid, "--reveal", "--json", env={"TICKETQ_AGENT": "s1"})
    assert "李秋水" in json.dumps(revealed.json(), ensure_ascii=False)


async def test_list_filters(settings: Settings, db: Pool, desks: FixedClock, cli: Cli) -> None:
    pre = await new_ticket(settings, db, "ww-6", subject="这款有现货吗?")
    after = await new_ticket(settings, db, "ww-7", subject="还没发货吗", order_id="o-7")
    assert (await cli("claim", after, "--as", "a2")).exit_code == 0

    async def ids(*args: str) -> list[str]:
        result = await cli("tickets", "list", *args, "--json")
        assert result.exit_code == 0, result
        return [t["id"] for t in result.json()]

    assert await ids() == [after, pre]  # newest first
    assert await ids("--role", "presale") == [pre]
    assert await ids("--owner", "a2") == [after]
    assert await ids("--status", "queued") == [pre]
    assert await ids("--waiting-for", "p1") == [pre]
    assert await ids("--waiting-for", "a1") == []  # a2 owns the after-sales ticket
    assert await ids("--waiting-for", "a2") == [after]
    assert await ids("--role", "presale", "--status", "in_progress") == []
    unknown = await cli("tickets", "list", "--waiting-for", "ghost")
    assert unknown.exit_code == 1 and "no agent 'ghost'" in unknown.stderr
    bad = await cli("tickets", "list", "--status", "lost")
    assert bad.exit_code == 2
    missing = await cli("tickets", "show", "T-nope")
    assert missing.exit_code == 1 and "no ticket 'T-nope'" in missing.stderr


async def test_promised_reply_shows_as_a_running_clock_and_in_due_within(
    settings: Settings, db: Pool, desks: FixedClock, cli: Cli
) -> None:
    tid = await new_ticket(settings, db, "ww-8", subject="还没发货吗", order_id="o-8")
    assert (await cli("claim", tid, "--as", "a1")).exit_code == 0
    promised = await cli("reply", tid, "查一下仓库,两小时内回复", "--promise", "2h", "--as", "a1")
    assert promised.exit_code == 0, promised
    shown = await cli("tickets", "show", tid)
    assert shown.exit_code == 0, shown
    clocks = shown.stdout.split("\nclocks\n")[1].split("\n\n")[0]
    assert "reply_promised" in clocks and "calendar" in clocks and "2h00m" in clocks, clocks
    assert "not_resolved_today" in clocks and "first_response" not in clocks  # replied
    kinds = [c["kind"] for c in (await cli("tickets", "show", tid, "--json")).json()["clocks"]]
    assert kinds == ["reply_promised", "reply_promise_missed", "not_resolved_today"]

    async def ids(*args: str) -> list[str]:
        result = await cli("tickets", "list", *args, "--json")
        assert result.exit_code == 0, result
        return [t["id"] for t in result.json()]

    assert await ids("--due-within", "3h") == [tid]
    assert await ids("--due-within", "10m") == []
    assert await ids("--breached") == []
    assert (await cli("tickets", "list", "--due-within", "soon")).exit_code == 2
    assert (await cli("reply", tid, "x", "--promise", "yesterday", "--as", "a1")).exit_code == 2


# --------------------------------------------------------------------------------------------
# Usage errors, unreachable servers, and request/reply itself


async def test_usage_errors_exit_2(cli: Cli, broker: object) -> None:
    nobody = await cli("claim", "T-1")  # no --as, no TICKETQ_AGENT, nobody signed in
    assert nobody.exit_code == 1 and "not signed in" in nobody.stderr, nobody
    for args in (
        ["handoff", "T-1", "--to", "presale", "--action", "x", "--as", "a1"],
        ["handoff", "T-1", "--to", "finance", "--action", "refund", "--data", "oops", "--as", "a1"],
        ["result", "T-1", "H1", "--as", "w1"],  # neither --done nor --failed
        ["reply", "T-1", "   ", "--as", "a1"],
        ["claim", "T-1", "--as", "a1", "--version", "0"],
    ):
        result = await cli(*args)
        assert result.exit_code == 2, (args, result)


async def test_unknown_ticket_is_rejected(cli: Cli, desks: FixedClock) -> None:
    result = await cli("claim", "T-nope", "--as", "a1", "--json")
    assert result.exit_code == 1
    assert result.json()["code"] == "unknown_ticket"


async def test_unreachable_broker_or_database_exits_3(
    settings: Settings, db: Pool, cli: Cli, broker: object
) -> None:
    await db.execute(
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                               customer_id, customer, subject, body, owner_role, opened_at)
           VALUES ('T-1', 'inquiry', 'queued', 'wangwang', 'normal', 's', 'e', 'c',
                   '{}', 's', 'b', 'presale', now())"""
    )
    await add_agents(db, [("p1", "P", ["presale"], ["day"])])  # signed in by `cli`
    dead_broker = {"TICKETQ_AMQP_URL": "amqp://u:p@127.0.0.1:1/"}
    result = await cli("claim", "T-1", "--as", "p1", "--timeout", "2", env=dead_broker)
    assert result.exit_code == 3, result
    assert "cannot reach the broker at 127.0.0.1:1" in result.stderr
    assert "u:p" not in result.stderr  # never the credentials

    dead_db = {"TICKETQ_DATABASE_URL": "postgresql://u:secret@127.0.0.1:1/x"}
    result = await cli("report", "list", env=dead_db)  # an operator's command: the database
    assert result.exit_code == 3, result
    assert "cannot reach the database" in result.stderr and "secret" not in result.stderr
    for args in (["tickets", "list"], ["agent", "list"]):  # reads ask a desk, never the database
        result = await cli(*args, "--as", "p1", env=dead_db)
        assert result.exit_code == 3, (args, result)
        assert "no desk worker is running" in result.stderr, (args, result)

    # A command needs no database (the worker finds the ticket); nobody consumes `tickets`
    # here: nothing is sent, at once.
    idle = await cli("claim", "T-1", "--as", "p1", "--timeout", "5", env=dead_db)
    assert idle.exit_code == 3 and "no desk worker is running" in idle.stderr


async def test_no_answer_in_time_exits_3_with_the_id_to_retry(
    settings: Settings, db: Pool, cli: Cli, channel: AbstractChannel
) -> None:
    await db.execute(
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                               customer_id, customer, subject, body, owner_role, opened_at)
           VALUES ('T-2', 'inquiry', 'queued', 'wangwang', 'normal', 's', 'e', 'c',
                   '{}', 's', 'b', 'presale', now())"""
    )
    await add_agents(db, [("p1", "P", ["presale"], ["day"])])  # signed in by `cli`
    taken: list[AbstractIncomingMessage] = []

    async def keep(message: AbstractIncomingMessage) -> None:  # takes commands, never answers
        taken.append(message)
        await message.ack()

    queue = await channel.get_queue("desk")
    tag = await queue.consume(keep)
    try:
        silent = await cli("claim", "T-2", "--as", "p1", "--timeout", "0.5")
    finally:
        await queue.cancel(tag)
    assert silent.exit_code == 3, silent
    assert "no answer from the desk worker within 0.5s" in silent.stderr
    assert taken and taken[0].message_id is not None
    assert f"--command-id {taken[0].message_id}" in silent.stderr
    assert taken[0].reply_to and taken[0].reply_to.startswith("amq.gen-")


async def test_send_command_matches_the_answer_by_causation_id(
    settings: Settings, channel: AbstractChannel
) -> None:
    """A stand-in worker answers first with noise and an answer to another command, then the
    real one: only the envelope whose causation id is the command's counts."""
    queue = await channel.get_queue("desk")

    async def respond(message: AbstractIncomingMessage) -> None:
        await message.ack()
        request = Envelope.model_validate_json(message.body)
        assert message.reply_to and request.type == "ticket.command"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert (request.producer, request.correlation_id) == ("cli", "T-9")

        def answer(causation: str, text: str) -> aio_pika.Message:
            reply = CommandReply(ticket_id="T-9", accepted=True, message=text, version=2)
            env = Envelope.wrap(reply, producer="stand-in", causation_id=causation)
            return aio_pika.Message(env.model_dump_json().encode())

        send = channel.default_exchange.publish
        await send(aio_pika.Message(b"not json"), routing_key=message.reply_to)
        await send(answer("someone-else", "wrong"), routing_key=message.reply_to)
        await send(answer(request.message_id, "right"), routing_key=message.reply_to)

    tag = await queue.consume(respond)
    try:
        command = TicketCommand(ticket_id="T-9", actor_id="p1", args=ClaimArgs())
        reply = await send_command(settings, command, token="t", timeout=5, message_id="m-1")
        assert (reply.accepted, reply.message, reply.version) == (True, "right", 2)
    finally:
        await queue.cancel(tag)

    with pytest.raises(Unreachable, match="no desk worker"):
        await send_command(settings, command, token="t", timeout=5)
