"""The local servers listen on loopback only (SPEC §10; deploy/local/servers.sh): AMQP, the
Erlang distribution port and epmd of RabbitMQ, and PostgreSQL. Read from the kernel's table
of listening sockets, whoever started them."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import BASE

EPMD = 4369
LISTEN = "0A"


def listening() -> dict[int, set[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """Port → the addresses something listens on it (TCP, IPv4 and IPv6)."""
    found: dict[int, set[ipaddress.IPv4Address | ipaddress.IPv6Address]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state != LISTEN:
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.setdefault(int(port, 16), set()).add(ipaddress.ip_address(words))
    return found


def test_the_kernel_table_reads_right() -> None:
    assert listening(), "no listening socket at all: /proc/net/tcp unreadable?"


@pytest.mark.parametrize("server", ["rabbitmq", "postgres"])
def test_the_servers_listen_on_loopback_only(server: str) -> None:
    url = urlsplit(BASE.amqp_url if server == "rabbitmq" else BASE.database_url)
    if not ipaddress.ip_address(url.hostname or "0.0.0.0").is_loopback:
        pytest.skip(f"{server} is not the local one ({url.hostname})")
    port = url.port or (5672 if server == "rabbitmq" else 5432)
    ports = [port, port + 20000, EPMD] if server == "rabbitmq" else [port]
    sockets = listening()
    for p in ports:
        assert p in sockets, f"nothing listens on port {p}"
        wide = {a for a in sockets[p] if not a.is_loopback}
        assert not wide, f"port {p} listens on {sorted(map(str, wide))}, not loopback only"
