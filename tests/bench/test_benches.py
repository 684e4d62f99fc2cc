"""The throughput benches (README: Performance) run end to end and report what `bench.ratio`
divides by the limit's figures: a rate, and the CPU per message, the machine's and by process."""

from __future__ import annotations

import uuid

import pytest

from bench import effects, intake
from bench.harness import CpuSnapshot, cost_by_group
from shared.config import Settings


async def test_the_intake_bench_counts_routed_tickets_and_their_cpu(settings: Settings) -> None:
    result = await intake.run(settings, uuid.uuid4().hex[:8], 60, 1, None, count_only=True)
    assert result["tickets_per_s"] > 0
    assert result["cpu_ms"] > 0
    assert_split(result)


async def test_the_effects_bench_refunds_each_task_once_and_reports_its_cpu(
    settings: Settings,
) -> None:
    result = await effects.run(settings, uuid.uuid4().hex[:8], 40, 1, 0.1)
    assert result["duplicates_sent"] == 4
    assert result["results"] == 40
    assert result["duplicate_effects"] == 0
    assert result["refunds_per_s"] > 0
    assert result["cpu_ms"] > 0
    assert_split(result)


def assert_split(cost: dict[str, float]) -> None:
    """The machine's CPU split into the servers', the clients' and the rest."""
    parts = ("broker_cpu_ms", "database_cpu_ms", "clients_cpu_ms", "rest_cpu_ms")
    assert sum(cost[p] for p in parts) == pytest.approx(cost["cpu_ms"])
    assert cost["clients_cpu_ms"] > 0  # this process published every message


def test_the_split_names_the_servers_and_the_clients_and_leaves_the_kernel_in_the_rest() -> None:
    # As pipeline_limit.py reports them: milliseconds by process name.
    cost = cost_by_group(
        5.0,
        [
            ("beam.smp", 0.5),
            ("postgres", 1.0),
            ("postgres", 0.25),
            ("python3.11", 2.0),
            ("kworker", 0.5),
        ],
    )
    assert cost == {
        "cpu_ms": 5.0,
        "broker_cpu_ms": 0.5,
        "database_cpu_ms": 1.25,
        "clients_cpu_ms": 2.0,
        "rest_cpu_ms": 1.25,
    }


def test_a_process_counts_what_it_spent_between_two_snapshots() -> None:
    before = CpuSnapshot(10.0, {(7, 1): ("postgres", 2.0), (8, 1): ("kworker/0:1-mm", 1.0)})
    # Process 7 spent 1 s; 8 changed its name (kernel workers do) and spent 0.5 s; 9 is new.
    after = CpuSnapshot(
        14.0,
        {(7, 1): ("postgres", 3.0), (8, 1): ("kworker/0:1-events", 1.5), (9, 5): ("python3", 2.0)},
    )
    assert before.per_message(after, 1000) == {
        "cpu_ms": 4.0,
        "broker_cpu_ms": 0.0,
        "database_cpu_ms": 1.0,
        "clients_cpu_ms": 2.0,
        "rest_cpu_ms": 1.0,
    }
