"""Intake and finance refunds as a share of what the machine carries, measured side by side.

    python -m bench.ratio --limits DIR [--rounds 3] [-n 3000] [--refunds 1500]

DIR holds the limit probes (`pipeline_limit.py`, from the shared `limits` folder, with their
own venv at DIR/.venv: aio-pika, asyncpg, uvloop). Each round runs, one after the other on the
same servers, the pipeline limit with a live producer (`pipeline_limit.py --live`: consume →
the ticket transaction → confirmed publish → ack, no ticketq code), then `bench.intake --count-only`
with one replica (the routed messages left in their queues, as the limit leaves its queue B),
then `bench.effects` with one replica; each round's ratio is the project's rate over
that round's limit, so machine noise (2 shared cores) hits both alike. The project's benches
run on uvloop, as the limit's producer and worker do. Prints every round and
the median ratio with its spread (min-max). Three rounds of the defaults take about two
minutes on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import uvloop

from bench import effects, intake
from bench.harness import PROCESS_GROUPS, cost_by_group
from shared.config import Settings
from shared.logging import configure_logging

LIMITS_DB = "limits"
GROUPS = (*PROCESS_GROUPS.values(), "rest")


async def _limits_database(base: Settings) -> str:
    """The limit probes' database on the same server (made once, kept: it is small)."""
    admin = await asyncpg.connect(base.database_url)
    try:
        if not await admin.fetchval("SELECT true FROM pg_database WHERE datname = $1", LIMITS_DB):
            await admin.execute(f"CREATE DATABASE {LIMITS_DB}")
    finally:
        await admin.close()
    return urlunsplit(urlsplit(base.database_url)._replace(path="/" + LIMITS_DB))


def pipeline_limit(
    limits: Path, base: Settings, pg_dsn: str, n: int, first: bool
) -> tuple[float, dict[str, float]]:
    """One run of `pipeline_limit.py --live`: its messages/s, and its CPU milliseconds per
    message as `CpuSnapshot.per_message` gives ours (from the busy shares of the machine and
    of each process it reports, over its run)."""
    python = limits / ".venv" / "bin" / "python"
    command = [str(python), "pipeline_limit.py", "--live", "--n", str(n), "--runs", "1"]
    env = {**os.environ, "AMQP_URL": base.amqp_url, "PG_DSN": pg_dsn}
    out = subprocess.run(
        [*command, *(["--create-schema"] if first else [])],
        cwd=limits,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row = next(json.loads(line) for line in out.splitlines() if line.startswith("{"))
    per_message = row["secs"] * 1000 / n / 100  # from % of one core over the run
    # Its figure for the rest is not used: it counts a kernel worker whose name changed over
    # the run (they do, with their work) with all its CPU since boot.
    return float(row["rate"]), cost_by_group(
        row["machine_cpu"] * per_message,
        ((comm, share * per_message) for comm, share in row["cpu_by_process"].items()),
    )


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=Path, required=True, help="folder of pipeline_limit.py")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", type=int, default=3_000, help="messages per limit and intake run")
    parser.add_argument("--refunds", type=int, default=1_500, help="refunds per effects run")
    args = parser.parse_args()
    base = Settings()
    configure_logging("warning")
    pg_dsn = asyncio.run(_limits_database(base))
    print(f"side by side, {args.rounds} rounds, {os.cpu_count()} cores")
    print(
        f"round {'limit/s':>8} {'cpu ms':>7} | {'intake/s':>9} {'ratio':>6} {'cpu ms':>7} "
        f"{'cost':>5} | {'refunds/s':>9} {'ratio':>6} {'cpu ms':>7} {'cost':>5}"
    )
    ratios: dict[str, list[float]] = {
        k: [] for k in ("intake", "intake_cost", "refunds", "refunds_cost")
    }
    costs: dict[str, list[Mapping[str, float]]] = {k: [] for k in ("limit", "intake", "refunds")}
    for r in range(1, args.rounds + 1):
        limit, limit_cost = pipeline_limit(args.limits, base, pg_dsn, args.n, first=r == 1)
        costs["limit"].append(limit_cost)
        limit_cpu = limit_cost["cpu_ms"]
        tag = f"q{r}_{int(time.time())}"
        tickets = uvloop.run(intake.run(base, tag, args.n, 1, None, count_only=True))
        refunds = uvloop.run(effects.run(base, tag, args.refunds, 1, 0.1))
        if refunds["duplicate_effects"] != 0 or refunds["results"] != args.refunds:
            raise SystemExit(f"round {r}: duplicate effects or missing results: {refunds}")
        row = f"{r:>5} {limit:>8.0f} {limit_cpu:>7.2f}"
        for name, rate, result in (
            ("intake", tickets["tickets_per_s"], tickets),
            ("refunds", refunds["refunds_per_s"], refunds),
        ):
            costs[name].append(result)
            ratios[name].append(rate / limit)
            ratios[f"{name}_cost"].append(limit_cpu / result["cpu_ms"])
            row += (
                f" | {rate:>9.0f} {ratios[name][-1]:>6.2f} "
                f"{result['cpu_ms']:>7.2f} {ratios[f'{name}_cost'][-1]:>5.2f}"
            )
        print(row, flush=True)
    for name in ("intake", "refunds"):
        print(f"{name} / limit, throughput: {spread(ratios[name])}")
        print(f"{name} / limit, CPU cost:   {spread(ratios[f'{name}_cost'])}")
    print(breakdown(costs))


def breakdown(costs: Mapping[str, list[Mapping[str, float]]]) -> str:
    """Where a message's CPU goes, by process group: each pipeline's median over the rounds,
    in milliseconds per message (the limit's message; our ticket, our refund)."""
    lines = ["CPU ms per message, median | " + " ".join(f"{g:>8}" for g in ("machine", *GROUPS))]
    for name, rows in costs.items():
        keys = ("cpu_ms", *(f"{g}_cpu_ms" for g in GROUPS))
        medians = [statistics.median(r[k] for r in rows) for k in keys]
        lines.append(f"{name:>26} | " + " ".join(f"{m:>8.2f}" for m in medians))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
