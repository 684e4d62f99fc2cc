"""The throughput benches (README: Performance) run end to end and report what `bench.ratio`
divides by the limit's figures: a rate, and the machine's CPU per message."""

from __future__ import annotations

import uuid

from bench import effects, intake
from shared.config import Settings


async def test_the_intake_bench_counts_routed_tickets_and_their_cpu(settings: Settings) -> None:
    result = await intake.run(settings, uuid.uuid4().hex[:8], 60, 1, None, count_only=True)
    assert result["tickets_per_s"] > 0
    assert result["cpu_ms"] > 0


async def test_the_effects_bench_refunds_each_task_once_and_reports_its_cpu(
    settings: Settings,
) -> None:
    result = await effects.run(settings, uuid.uuid4().hex[:8], 40, 1, 0.1)
    assert result["duplicates_sent"] == 4
    assert result["results"] == 40
    assert result["duplicate_effects"] == 0
    assert result["refunds_per_s"] > 0
    assert result["cpu_ms"] > 0
