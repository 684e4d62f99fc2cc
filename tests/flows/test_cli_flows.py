"""`ticketq flows list|show [--dot]`, and `ticketq step` / `tickets show` on a flow."""

from __future__ import annotations

from typer.testing import CliRunner

from shared.cli.main import app
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from tests.staff import Cli
from tests.tickets import test_cli as ticket_cli

# The agent CLI's fixtures: the CLI as a process would run it, the desks on a fixed clock.
desks = ticket_cli.desks
roster_file = ticket_cli.roster_file


def test_flows_show_prints_the_states_and_moves_and_a_dot_diagram() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["flows", "list"])
    assert (
        listed.exit_code == 0
        and "wrong_item" in listed.stdout
        and "unpaid_reminder" in listed.stdout
    )
    shown = runner.invoke(app, ["flows", "show", "wrong_item"])
    assert shown.exit_code == 0, shown.stdout
    assert shown.stdout.startswith("wrong_item v1: Wrong or missing item")
    assert "  verify  [ask]  Did the shop send the wrong item" in shown.stdout
    assert "      shop_error -> offer_compensation" in shown.stdout
    assert "      timeout: customer_reply_24h after 24h" in shown.stdout
    dot = runner.invoke(app, ["flows", "show", "wrong_item", "--dot"])
    assert dot.stdout.startswith('digraph "wrong_item_v1" {')
    assert '"verify" -> "offer_compensation" [label="shop_error"];' in dot.stdout
    assert '"ask_photos" -> "no_photos" [label="timeout", style=dashed];' in dot.stdout
    unknown = runner.invoke(app, ["flows", "show", "gossip"])
    assert unknown.exit_code == 1 and "no flow 'gossip'" in unknown.stderr


async def test_step_and_the_current_step_through_the_cli(
    settings: Settings, db: Pool, desks: FixedClock, cli: Cli
) -> None:
    tid = await ticket_cli.new_ticket(settings, db, "ww-flow", subject="发错货了", order_id="o-1")
    assert (await cli("claim", tid, "--as", "a1")).exit_code == 0  # starts its flow
    shown = (await cli("tickets", "show", tid)).stdout
    assert "flow wrong_item v1 · at ask_photos (wait) since 11-23 10:00" in shown
    assert "  answers: photos_received" in shown
    assert "  timeout: customer_reply_24h (24h) due 11-24 10:00, then no_photos" in shown

    env = {"TICKETQ_AGENT": "a1"}
    moved = await cli("step", tid, "--answer", "photos_received", "--note", "照片已收到", env=env)
    assert moved.exit_code == 0, moved
    assert moved.stdout.startswith("accepted: Step accepted; now at verify; owner: "), moved
    refused = await cli("step", tid, "--answer", "refund", env=env)
    assert refused.exit_code == 1
    assert refused.stdout.startswith("rejected (not_allowed_by_flow): ")
    assert "allowed answers: shop_error, not_shop_error" in refused.stdout

    view = (await cli("tickets", "show", tid, "--json")).json()
    assert (view["flow"]["state"], view["flow"]["answers"]) == (
        "verify",
        ["shop_error", "not_shop_error"],
    )
    stepped = [h for h in view["history"] if h["action"] == "stepped"]
    assert [(h["detail"]["left"], h["detail"]["entered"]) for h in stepped] == [
        ("ask_photos", "verify")
    ]
    revealed = (await cli("tickets", "show", tid, "--reveal", "--as", "s1", "--json")).json()
    assert revealed["flow"]["answers"] == ["shop_error", "not_shop_error"]
