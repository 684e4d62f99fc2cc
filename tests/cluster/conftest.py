"""A private 3-node RabbitMQ cluster (deploy/local/cluster.sh) for the tests of this folder:
one per session, on ports and in a directory of its own, destroyed at the end. The shared
single-node server is never touched."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ops.test_local_servers import free

SCRIPT = Path(__file__).parents[2] / "deploy/local/cluster.sh"
NODES = ("a", "b", "c")

needs_rabbitmq = pytest.mark.skipif(
    not (shutil.which("rabbitmq-server") or Path("/usr/lib/rabbitmq/bin").is_dir()),
    reason="RabbitMQ is not installed (deploy/local/servers.sh would apt-get it)",
)


@dataclass
class Cluster:
    env: dict[str, str]
    base_port: int
    started_in: float  # seconds `cluster.sh start` took

    def node_url(self, node: str, vhost: str) -> str:
        return f"amqp://ticketq:ticketq@127.0.0.1:{self.port(node)}/{vhost}"

    def port(self, node: str) -> int:
        return self.base_port + NODES.index(node)

    def name(self, node: str) -> str:
        return f"rabbit-{node}-{self.base_port}@localhost"

    def script(self, *args: str, timeout: float = 240) -> str:
        run = subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert run.returncode == 0, f"cluster.sh {' '.join(args)}:\n{run.stderr}"
        return run.stdout

    def ctl_json(self, node: str, *args: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(
            self.script("rabbitmqctl", node, "-q", *args, "--formatter", "json", timeout=60)
        )
        return rows

    def kill(self, node: str) -> None:
        """SIGKILL the node's Erlang VM: no goodbye to its clients or peers."""
        pid_file = Path(self.env["TICKETQ_CLUSTER_DIR"]) / node / "rabbitmq/rabbitmq.pid"
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    def start(self) -> None:
        """Start whichever nodes are down; they rejoin the cluster."""
        self.script("start")

    def add_vhost(self, vhost: str) -> None:
        self.script("rabbitmqctl", "a", "add_vhost", vhost)
        self.script("rabbitmqctl", "a", "set_permissions", "-p", vhost, "ticketq", ".*", ".*", ".*")

    def connections(self, node: str, vhost: str) -> dict[str, int]:
        """Connection name -> the node port it is connected to, as `node` sees the cluster."""
        found = {}
        rows = self.ctl_json(node, "list_connections", "vhost", "client_properties", "port")
        for row in rows:
            if row["vhost"] == vhost:
                props = {key: value for key, _kind, value in row["client_properties"]}
                found[str(props.get("connection_name"))] = int(row["port"])
        return found

    def queues(self, node: str, vhost: str) -> dict[str, dict[str, Any]]:
        rows = self.ctl_json(node, "list_queues", "-p", vhost, "name", "type", "leader", "members")
        return {row["name"]: row for row in rows}


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = next(
        p
        for p in random.sample(range(30000, 40000, 10), 200)
        if all(free(p + i) and free(p + i + 20000) for i in range(3))
    )
    env = {
        **os.environ,
        "TICKETQ_CLUSTER_DIR": str(tmp_path_factory.mktemp("cluster")),
        "TICKETQ_CLUSTER_AMQP_PORT": str(base),
    }
    t0 = time.monotonic()
    cluster = Cluster(env, base, 0.0)
    try:
        cluster.script("start")
        cluster.started_in = time.monotonic() - t0
        yield cluster
    finally:
        cluster.script("destroy", timeout=120)
