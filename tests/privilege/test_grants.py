"""The grants as data (shared/setup/grants.py): the rules they must keep, and the places that
list the principals (servers.sh, compose) agreeing with them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import asyncpg
import pytest
import yaml

from services.catalogue import CATALOGUE
from shared.setup.broker import password_hash
from shared.setup.grants import (
    APPEND_ONLY,
    BROKER,
    LEDGERS,
    MIGRATOR,
    TABLES,
    UNGRANTED,
    permissions,
    routing_keys,
)
from tests.privilege.conftest import Deployment

ROOT = Path(__file__).resolve().parents[2]


def test_nobody_may_update_or_delete_history_or_ledger_rows() -> None:
    for who, tables in TABLES.items():
        for table in APPEND_ONLY & set(tables):
            assert not set(tables[table]) & {"U", "D"}, (who, table)


def test_a_ledger_is_written_by_its_own_service_only() -> None:
    for owner, ledger in LEDGERS.items():
        for who, tables in TABLES.items():
            writes = {t for t in ledger if set(tables.get(t, "")) & {"I", "U", "D"}}
            assert not writes or who == owner, (who, writes)


def test_the_workbench_only_reads_and_the_agents_cli_has_no_database_at_all() -> None:
    assert set(TABLES["web"].values()) == {"S"}
    assert "cli" not in TABLES  # its reads are requests to the workers (issue #12)


@pytest.mark.parametrize("who", sorted(BROKER))
def test_broker_permissions_name_exactly_their_resources(who: str) -> None:
    allowed = permissions(who)
    regexes = (allowed.configure, allowed.write, allowed.read, allowed.topic_write)
    for regex in (*regexes, allowed.dead_letter_write):
        assert regex.startswith("^") and regex.endswith("$"), regex  # unanchored matches more
    keys = routing_keys(who)
    own = CATALOGUE.queues_of(who) if BROKER[who].worker else ()
    for queue in ("intake", "presale", "aftersales", "desk", "warehouse", "finance"):
        assert bool(re.fullmatch(allowed.topic_write, queue)) == (queue in keys), queue
        assert bool(re.fullmatch(allowed.dead_letter_write, queue)) == (queue in own), queue
    assert not re.fullmatch(allowed.configure, "intake")  # nobody declares or deletes a queue


def test_intake_publishes_to_the_desks_only_and_upstream_to_intake_and_platform_only() -> None:
    assert set(routing_keys("intake")) == {"presale", "aftersales"}
    assert routing_keys("upstream") == ("intake", "platform")
    # commands, operations, reads
    assert set(routing_keys("cli")) == {"desk", "warehouse", "finance"}


def test_a_password_hash_is_what_rabbitmq_computes() -> None:
    # rabbit_password_hashing_sha256 of "test12" with salt 908D C60A (RabbitMQ's docs' example)
    assert password_hash("test12", bytes.fromhex("908DC60A")) == (
        "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    )


def test_servers_sh_and_compose_give_every_principal_its_own_credentials(tmp_path: Path) -> None:
    printed = subprocess.run(
        [ROOT / "deploy/local/servers.sh", "env"],
        env={"TICKETQ_LOCAL_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    amqp = set(re.findall(r"TICKETQ_(\w+)_AMQP_URL=amqp://tq_", printed))
    database = set(re.findall(r"TICKETQ_(\w+)_DATABASE_URL=postgresql://tq_", printed))
    assert amqp == {n.upper() for n in BROKER}
    assert database == {n.upper() for n in (*TABLES, MIGRATOR)}
    secrets = tmp_path / "secrets"
    assert secrets.stat().st_mode & 0o077 == 0
    assert all(f.stat().st_mode & 0o077 == 0 for f in secrets.iterdir())

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    setup = compose["services"]["setup"]["environment"]
    assert {k for k in setup if k.endswith("_AMQP_URL")} - {"TICKETQ_ADMIN_AMQP_URL"} == {
        f"TICKETQ_{n}_AMQP_URL" for n in amqp
    }
    assert {k for k in setup if k.endswith("_DATABASE_URL")} - {"TICKETQ_ADMIN_DATABASE_URL"} == {
        f"TICKETQ_{n}_DATABASE_URL" for n in database
    }


async def test_every_table_of_the_schema_is_in_the_grants(deployment: Deployment) -> None:
    """A new migration's table must be given to whoever uses it (one line in TABLES), or
    listed as nobody's."""
    conn = await asyncpg.connect(deployment.admin.database_url)
    try:
        tables = {
            r["relname"]
            for r in await conn.fetch(
                "SELECT relname FROM pg_class"
                " WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v')"
            )
        }
        owners = {
            r["owner"]
            for r in await conn.fetch(
                "SELECT DISTINCT relowner::regrole::text AS owner FROM pg_class"
                " WHERE relnamespace = 'public'::regnamespace"
            )
        }
    finally:
        await conn.close()
    granted = {t for grants in TABLES.values() for t in grants}
    assert tables - granted - UNGRANTED == set()
    assert granted | UNGRANTED >= tables and granted <= tables
    assert owners == {deployment.logins.users[MIGRATOR]}
