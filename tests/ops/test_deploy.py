"""The deploy files stay in step with the code (metric names, workers, scrape targets) and
expose nothing by default (loopback only, no default user or password)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# Compose's variable syntax (${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}...).
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?+])([^}]*))?\}")
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")  # a value the user must give, no default
SECRET_KEY = re.compile(r"PASS(WORD)?$|SECRET|TOKEN")
URL_PASSWORD = re.compile(r"^\w+://[^:/@]+:(?P<password>.+)@[^@]+$")


def interpolate(value: str, env: dict[str, str]) -> str:
    """A compose file's string as `docker compose` reads it given `env` (its .env file):
    ${NAME}, ${NAME:-default} and ${NAME-default}; any other form is refused here."""

    def one(m: re.Match[str]) -> str:
        name, op, default = m.group(1), m.group(2), m.group(3) or ""
        if op not in (None, ":-", "-"):
            raise ValueError(
                f"{m.group(0)}: only ${{NAME}}, ${{NAME:-x}}, ${{NAME-x}} are read here"
            )
        given = env.get(name)
        if given is None or (given == "" and op == ":-"):
            return default
        return given

    return VARIABLE.sub(one, value)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def published(service: dict[str, Any]) -> list[str]:
    """Its published ports, as `host_ip:published:target`."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):  # the long syntax
            port = f"{port.get('host_ip', '')}:{port.get('published', '')}:{port['target']}"
        ports.append(port)
    return ports


def test_compose_publishes_every_port_on_loopback_by_default() -> None:
    ports = [
        interpolate(port, {}) for svc in compose()["services"].values() for port in published(svc)
    ]
    assert len(ports) >= 5  # AMQP, management, PostgreSQL, Prometheus, Grafana
    for port in ports:
        host_ip, _, _ = port.rpartition(":")[0].rpartition(":")
        assert host_ip == "127.0.0.1", f"{port} is published beyond loopback by default"
    widened = published(compose()["services"]["postgres"])[0]
    assert interpolate(widened, {"TICKETQ_BIND": "0.0.0.0"}).startswith("0.0.0.0:")


def secrets(node: object, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, value) of every password in the file: password keys and URLs' passwords."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and SECRET_KEY.search(str(key).upper()):
                yield f"{where}.{key}", value
            yield from secrets(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from secrets(item, f"{where}[{i}]")
    elif isinstance(node, str) and (m := URL_PASSWORD.match(node)):
        yield where, m["password"]


URLS = ("AMQP", "DATABASE")


def test_compose_has_no_guest_user_nor_any_password_of_its_own() -> None:
    assert "guest" not in json.dumps(compose()).lower()  # no guest user, nor its password
    rabbitmq = compose()["services"]["rabbitmq"]["environment"]
    assert rabbitmq["RABBITMQ_DEFAULT_USER"] not in ("", "guest")  # so guest is never created
    found = dict(secrets(compose()))
    variable = {}
    for where, value in found.items():
        required = REQUIRED.fullmatch(value)
        assert required, f"{where}: {value!r} is not only a value the user must give"
        variable[where] = required[1]
    # One password per server, each the same wherever that server's password is used (the
    # cluster profile's nodes, rabbitmq-2 and -3, share the broker's).
    broker = variable[".services.rabbitmq.environment.RABBITMQ_DEFAULT_PASS"]
    database = variable[".services.postgres.environment.POSTGRES_PASSWORD"]
    grafana = variable[".services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD"]
    assert variable[".x-admin-env.TICKETQ_ADMIN_AMQP_URL"] == broker
    assert variable[".x-admin-env.TICKETQ_ADMIN_DATABASE_URL"] == database
    # Each worker signs in as itself (its own password), and only `setup` has the admin's.
    own = {
        name: {variable[f".services.{name}.environment.TICKETQ_{url}_URL"] for url in URLS}
        for name in CATALOGUE.services
    }
    assert all(len(passwords) == 1 for passwords in own.values()), own
    assert (
        len({p for passwords in own.values() for p in passwords} | {broker, database, grafana}) == 8
    )
    assert not any(
        value in (broker, database)
        for where, value in variable.items()
        if not where.startswith(
            (".x-admin-env", ".services.setup.", ".services.rabbitmq", ".services.postgres.")
        )
    )
    example = (ROOT / ".env.example").read_text()
    assert all(f"\n{name}=\n" in example for name in set(variable.values()))
