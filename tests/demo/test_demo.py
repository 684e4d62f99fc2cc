"""`make demo` (the README's first command) runs through, against this session's servers."""

from __future__ import annotations

from pathlib import Path

from shared.config import Settings
from shared.demo import run_demo


async def test_the_demo_walks_every_case_and_the_whole_flow(
    settings: Settings, broker: object, tmp_path: Path
) -> None:
    said: list[str] = []
    # Not made yet, as `.local/demo` in a fresh clone.
    await run_demo(settings, log_dir=tmp_path / "demo", keep_running=False, say=said.append)
    out = "\n".join(said)
    for outcome in (
        "auto-assigned to 王芳 (wangfang): its first handler",
        "duplicate of",
        "follow-up attached to",
        "dead-lettered: invalid_contract (payload.customer: Field required)",
        "rejected (not_owner)",
        "rejected (not_first_handler)",
        "rejected (refund_exceeds_paid): paid 89.00, refunded 0.00, asked 120.00",
        "Close accepted",
        "history (Asia/Shanghai)",
        "rejected (not_allowed_by_flow)",
        "Step accepted; now at paid",
    ):
        assert outcome in out, f"{outcome!r} not in the demo's output:\n{out}"
    assert "13912345678" not in out  # the customer's phone, masked everywhere
