"""deploy/local/servers.sh: the local servers listen on loopback only and RabbitMQ has no
guest user. Runs a private RabbitMQ and PostgreSQL of its own (own ports and data dir),
never the shared ones, and destroys them at the end."""

from __future__ import annotations

import glob
import ipaddress
import os
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "deploy/local/servers.sh"
LISTEN = "0A"  # the TCP state in /proc/net/tcp*

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("rabbitmq-server") or Path("/usr/lib/rabbitmq/bin").is_dir())
        or not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        reason="RabbitMQ and PostgreSQL are not installed (servers.sh would apt-get them)",
    ),
]


def free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def private_servers(tmp_path: Path) -> Iterator[dict[str, str]]:
    """servers.sh's environment for servers of this test's own, started; destroyed after."""
    amqp = next(p for p in random.sample(range(12000, 20000), 200) if free(p) and free(p + 20000))
    pg = next(p for p in random.sample(range(20000, 30000), 200) if free(p))  # clear of both
    env = {
        **os.environ,
        "TICKETQ_LOCAL_DIR": str(tmp_path / "local"),
        "TICKETQ_LOCAL_AMQP_PORT": str(amqp),
        "TICKETQ_LOCAL_PG_PORT": str(pg),
    }
    try:
        started = subprocess.run([SCRIPT, "start"], env=env, capture_output=True, timeout=240)
        assert started.returncode == 0, started.stderr.decode()
        yield env
    finally:
        subprocess.run([SCRIPT, "destroy"], env=env, check=True, capture_output=True, timeout=120)


def test_local_servers_listen_on_loopback_only_and_rabbitmq_has_no_guest(
    private_servers: dict[str, str],
) -> None:
    env = private_servers
    amqp, pg = int(env["TICKETQ_LOCAL_AMQP_PORT"]), int(env["TICKETQ_LOCAL_PG_PORT"])
    local = Path(env["TICKETQ_LOCAL_DIR"])
    beam = int((local / "rabbitmq/rabbitmq.pid").read_text())
    postmaster = int((local / "pg/data/postmaster.pid").read_text().split()[0])

    listening = listening_sockets()
    assert sockets_of(beam, listening) == {("127.0.0.1", amqp), ("127.0.0.1", amqp + 20000)}
    assert sockets_of(postmaster, listening) == {("127.0.0.1", pg)}
    # The epmd daemons, by what they listen on; an `epmd` that listens on nothing is a client
    # run of it (`epmd -daemon` finding one up already, started by any node), on its way out.
    daemons = {
        pid: addresses
        for pid in pids()
        if command(pid) == "epmd"
        and (addresses := {address for address, _ in sockets_of(pid, listening)})
    }
    assert daemons, "the node registers with an epmd"
    for addresses in daemons.values():
        assert all(ipaddress.ip_address(a).is_loopback for a in addresses), addresses

    users = subprocess.run(
        [SCRIPT, "rabbitmqctl", "-q", "list_users", "--no-table-headers"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split("\n")
    assert sorted(line.split()[0] for line in users if line.strip()) == ["ticketq"]


def listening_sockets() -> dict[int, tuple[str, int]]:
    """Every listening TCP socket of this network namespace: inode -> (address, port)."""
    found: dict[int, tuple[str, int]] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != LISTEN:
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found[int(fields[9])] = (socket.inet_ntop(family, words), int(port, 16))
    return found


def sockets_of(pid: int, listening: dict[int, tuple[str, int]]) -> set[tuple[str, int]]:
    """The listening sockets process `pid` holds open."""
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inode = int(target[len("socket:[") : -1])
            if inode in listening:
                held.add(listening[inode])
    return held


def pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""  # gone meanwhile
