"""The deploy files stay in step with the code: metric names, workers, scrape targets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import shared.observability  # noqa: F401  (registers the metrics)
from services.catalogue import CATALOGUE

ROOT = Path(__file__).parents[2]


def exported_names() -> set[str]:
    return {s.name for m in REGISTRY.collect() for s in m.samples} | {
        m.name + suffix for m in REGISTRY.collect() for suffix in ("", "_total", "_bucket")
    }


def test_dashboard_queries_only_metrics_the_workers_export() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/ticketq.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"ticketq_\w+", e)}
    assert used, "the dashboard queries nothing"
    assert used <= exported_names(), used - exported_names()


def test_compose_runs_every_worker_and_prometheus_scrapes_them() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    workers = {
        name: svc["command"]
        for name, svc in compose["services"].items()
        if svc.get("command", [None])[:2] == ["ticketq", "worker"]
    }
    assert {name: cmd[2] for name, cmd in workers.items()} == {s: s for s in CATALOGUE.services}
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    names = scrape["scrape_configs"][0]["dns_sd_configs"][0]["names"]
    assert sorted(names) == sorted(CATALOGUE.services)
