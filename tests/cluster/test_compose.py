"""docker-compose.yml's `cluster` profile: three RabbitMQ nodes that find each other, share
one cookie, and are all given to the workers; without the profile, one node as before."""

from __future__ import annotations

import re

from shared.messaging.amqp import broker_urls
from tests.ops.test_deploy import ROOT, compose, interpolate


def test_the_cluster_profile_joins_three_nodes_and_gives_the_workers_all_three() -> None:
    services = compose()["services"]
    nodes = {name: svc for name, svc in services.items() if "rabbitmq" in str(svc.get("image"))}
    assert {name: svc.get("profiles") for name, svc in nodes.items()} == {
        "rabbitmq": None,  # the single node, and the cluster's first
        "rabbitmq-2": ["cluster"],
        "rabbitmq-3": ["cluster"],
    }
    hostnames = {svc["hostname"] for svc in nodes.values()}
    conf = (ROOT / "deploy/rabbitmq/cluster.conf").read_text()
    peers = set(
        re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$", conf, re.M)
    )
    assert peers == hostnames == set(nodes)
    cookies = {svc["environment"]["RABBITMQ_ERLANG_COOKIE"] for svc in nodes.values()}
    assert cookies == {"${TICKETQ_ERLANG_COOKIE:-}"}
    for name in ("rabbitmq-2", "rabbitmq-3"):
        mounts = nodes[name]["volumes"]
        assert (
            "./deploy/rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/20-ticketq-cluster.conf:ro"
            in mounts
        )
        assert nodes[name]["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}
    assert len({svc["volumes"][0] for svc in nodes.values()}) == 3  # a data volume each

    example = (ROOT / ".env.example").read_text()
    [hosts] = re.findall(r"^# TICKETQ_AMQP_HOSTS=(\S+)$", example, re.M)
    # Each worker's own URL lists the nodes; its password is a required value (test_deploy
    # checks it): given here as `pw`.
    env = services["intake"]["environment"]
    url = re.sub(r"\$\{TICKETQ_INTAKE_PASSWORD:\?[^}]*\}", "pw", env["TICKETQ_AMQP_URL"])
    assert broker_urls(interpolate(url, {})) == ("amqp://tq_intake:pw@rabbitmq:5672/ticketq",)
    assert broker_urls(interpolate(url, {"TICKETQ_AMQP_HOSTS": hosts})) == tuple(
        f"amqp://tq_intake:pw@{name}:5672/ticketq" for name in nodes
    )
