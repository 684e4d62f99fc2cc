"""The daily report on a small known day: hand-counted figures, CSVs that add up, timers' rows,
the kept reports."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from shared.db import Pool
from shared.report.daily import build_report
from shared.report.figures import FIGURES
from tests.report.day import DAY, at, write_day
from tests.staff import Cli

NO_BROKER = {"error": "not asked"}


async def test_figures_equal_the_hand_counted_day(db: Pool) -> None:
    await write_day(db)
    async with db.acquire() as conn:
        report = await build_report(conn, DAY, None, generated_at=at(23), dlq=NO_BROKER)
    f = report["figures"]
    # T1 T2 T3 T5 T7; T4 came the day before, T6 the day after
    assert f["received"]["count"] == 5
    assert f["received"]["by"]["kind"] == {
        "inquiry": 2,
        "unpaid_reminder": 1,
        "complaint": 1,
        "return": 1,
    }
    assert f["received"]["by"]["channel"] == {"im": 3, "phone": 1, "email": 1}
    assert f["received"]["by"]["hour"] == {"8": 1, "9": 1, "10": 1, "14": 1, "23": 1}
    speed = report["first_response_time"]
    assert (speed["replied"], speed["within_30s"]) == (3, 2)  # 10 s, 25 s, 45 s
    assert (speed["p50_seconds"], speed["p90_seconds"]) == (25.0, 41.0)
    assert speed["share_within_30s"] == 0.6667
    assert speed["histogram_10s"] == [0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["resolved"]["count"] == 3 and report["resolution_rate"] == 0.6  # T1 T2 T7
    assert f["reopened"]["count"] == 1  # T4
    assert f["carried_over"]["count"] == 3  # T3 open, T4 reopened, T5 new
    assert f["transfers"]["by"]["pair"] == {"aftersales->warehouse": 1, "aftersales->finance": 1}
    assert f["transfers"]["sums"]["pair"] == {"aftersales->warehouse": 1, "aftersales->finance": 0}
    assert f["losses"]["by"]["reason"] == {"price_too_high": 1}
    assert f["unpaid_outcomes"]["by"]["outcome"] == {"paid": 1}
    assert f["chase_credit"]["by"]["agent_id"] == {"a2": 1}
    assert f["delay_reasons"]["by"]["delay_reason"] == {"carrier backlog": 1}
    assert (f["refunds"]["count"], f["refunds"]["sum"]) == (2, "19.75")
    assert (f["compensation"]["count"], f["compensation"]["sum"]) == (1, "30.00")


async def test_breaches_and_escalations_are_the_rows_the_timers_wrote(db: Pool) -> None:
    await write_day(db)
    async with db.acquire() as conn:
        report = await build_report(conn, DAY, None, generated_at=at(23), dlq=NO_BROKER)
        written = {
            kind: {r["agent"]: r["n"] for r in await conn.fetch(sql)}
            for kind, sql in (
                ("breaches", "SELECT agent_id AS agent, count(*) AS n FROM breaches GROUP BY 1"),
                (
                    "escalations",
                    "SELECT to_agent_id AS agent, count(*) AS n FROM escalations GROUP BY 1",
                ),
            )
        }
    assert written["breaches"] == {"a1": 2, "a3": 1}
    for kind in ("breaches", "escalations"):
        assert report["figures"][kind]["by"]["agent_id"] == written[kind]


async def test_each_csv_adds_up_to_its_headline(
    db: Pool, broker: object, cli: Cli, tmp_path: Path
) -> None:
    await write_day(db)
    run = await cli("report", "daily", "--date", "2026-11-22", "--csv", str(tmp_path), "--json")
    assert run.exit_code == 0, run
    report = json.loads(run.stdout)
    for figure in FIGURES:
        with (tmp_path / f"{figure.name}.csv").open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        headline = report["figures"][figure.name]
        assert len(rows) == headline["count"], figure.name
        if figure.value:
            assert sum(Decimal(r[figure.value]) for r in rows) == Decimal(headline["sum"])
        for group, counts in headline["by"].items():
            assert sum(counts.values()) == len(rows), (figure.name, group)
    assert set(report["dlq"]["queues"].values()) == {0}  # the broker fixture declared them


async def test_a_role_sees_its_desk_and_the_reports_are_kept(db: Pool, cli: Cli) -> None:
    await write_day(db)
    for extra in ((), ("--role", "presale")):
        run = await cli("report", "daily", "--date", "2026-11-22", *extra, "--json")
        assert run.exit_code == 0, run
    presale = json.loads(run.stdout)
    assert presale["figures"]["received"]["count"] == 3  # T1 T2 T5
    yesterday = await cli("report", "daily")  # the clock's yesterday: 2026-11-22 again
    assert yesterday.exit_code == 0 and "Tickets received" in yesterday.stdout, yesterday
    kept = await cli("report", "list", "--json")
    assert [(r["day"], r["role"], r["received"]) for r in json.loads(kept.stdout)] == [
        ("2026-11-22", None, 5),
        ("2026-11-22", "presale", 3),
    ]
    assert "2026-11-22" in (await cli("report", "list")).stdout
