"""The workbench's live stream under load: N open SSE streams on one web process while
tickets change at a steady rate.

    python -m bench.web [--streams 200] [--rate 50] [--seconds 60] [--scope all|ticket]

In a database of its own (dropped after): starts `ticketq web` as a process, opens
`--streams` event streams with httpx (`--scope all`: every stream gets every change, the
supervisor's and agents' list pages; `ticket`: each follows one ticket, the ticket page),
then commits `--rate` ticket history rows a second, one transaction each, for `--seconds`.
Reports the time from a row's commit (its `at`, set by clock_timestamp() in the committing
statement) to its event reaching a stream (p50/p99/max over every delivery), events
delivered vs expected, and the web process's CPU (share of one core) and RSS (peak).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import socket
import statistics
import sys
import time
from array import array
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import httpx
from itsdangerous import TimestampSigner

from bench.harness import bench_database
from shared.agents.identity import open_session
from shared.config import Settings
from shared.db import Pool, create_pool
from shared.logging import configure_logging

TICKETS = 100
AGENT = "bench-agent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def session_cookie(secret: str, agent_id: str, token: str) -> str:
    """A session as Starlette's SessionMiddleware signs it (the bench holds the secret), its
    token minted in the store: the streams need no sign-in round trip through a worker."""
    data = base64.b64encode(json.dumps({"agent": agent_id, "token": token}).encode())
    return TimestampSigner(secret).sign(data).decode()


async def seed(pool: Pool) -> str:
    """The tickets that change, and the agent watching them; its session's token."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO agents (id, name, roles, shifts, online) "
            "VALUES ($1, 'bench', '{aftersales}', '{day}', true)",
            AGENT,
        )
        await conn.executemany(
            """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                                    customer_id, customer, subject, body, owner_role, opened_at)
               VALUES ($1, 'aftersales', 'open', 'wangwang', 'normal', 'bench', $1, 'c',
                       '{"id": "c", "nick": "c"}', 'bench', '', 'aftersales', now())""",
            [(f"B{i:04d}",) for i in range(TICKETS)],
        )
        token, _ = await open_session(
            conn, AGENT, ["aftersales"], datetime.now(UTC), timedelta(hours=1)
        )
        return token


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


async def follow(
    client: httpx.AsyncClient, url: str, window: tuple[float, float], out: list[float]
) -> None:
    """Read one stream until the window's end; a delivery's latency in `out` if it came
    within the window (wall-clock times: the rows' `at` is the database server's clock)."""
    async with client.stream("GET", url, timeout=None) as answer:
        answer.raise_for_status()
        rest = b""
        async for chunk in answer.aiter_bytes():
            now = time.time()
            if now > window[1]:
                return
            *lines, rest = (rest + chunk).split(b"\n")
            if now < window[0]:
                continue
            for line in lines:
                if line.startswith(b"data:"):
                    at = datetime.fromisoformat(json.loads(line[5:])["at"]).timestamp()
                    out.append(now - at)


async def clients(
    base: str, cookie: str, urls: list[str], window: tuple[float, float]
) -> list[float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=len(urls) + 10)
    cookies = {"ticketq_session": cookie}
    async with httpx.AsyncClient(base_url=base, limits=limits, cookies=cookies) as client:
        tasks = [asyncio.create_task(follow(client, url, window, latencies)) for url in urls]
        await asyncio.sleep(max(0.0, window[1] - time.time()) + 0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def client_process(base: str, cookie: str, urls: list[str], window: tuple[float, float]) -> bytes:
    """One process's share of the streams (a process of its own: one event loop parsing
    every stream would be what is measured, not the web)."""
    latencies = asyncio.run(clients(base, cookie, urls, window))
    return array("d", latencies).tobytes()


async def write(pool: Pool, rate: float, seconds: float) -> int:
    """`rate` history rows a second, one committed transaction each; how many."""
    n, started = 0, time.monotonic()
    async with pool.acquire() as conn:
        while (elapsed := time.monotonic() - started) < seconds:
            if n >= elapsed * rate:
                await asyncio.sleep(max(0.0, n / rate - elapsed))
                continue
            await conn.execute(
                """INSERT INTO ticket_history (ticket_id, at, actor_id, actor_name, action,
                                               message_id)
                   VALUES ($1, clock_timestamp(), $2, 'bench', 'replied', $3)""",
                f"B{n % TICKETS:04d}",
                AGENT,
                f"bench-{n}",
            )
            n += 1
    return n


async def run(args: argparse.Namespace) -> None:
    async with bench_database(Settings(), f"web_{int(time.time())}") as settings:
        pool = await create_pool(settings, size=2)
        token = await seed(pool)
        secret, port = secrets.token_urlsafe(24), free_port()
        env = {
            **os.environ,
            "TICKETQ_DATABASE_URL": settings.database_url,
            "TICKETQ_WEB_SECRET": secret,
            "TICKETQ_WEB_PORT": str(port),
            "TICKETQ_LOG_LEVEL": "warning",
        }
        web = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shared.cli.main", "web", env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base) as probe:
                for _ in range(100):
                    try:
                        (await probe.get("/login")).raise_for_status()
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            urls = [
                "/events" if args.scope == "all" else f"/events?ticket=B{i % TICKETS:04d}"
                for i in range(args.streams)
            ]
            start = time.time() + args.warmup
            window = (start, start + args.seconds + 1.0)
            cookie = session_cookie(secret, AGENT, token)
            loop = asyncio.get_running_loop()
            with ProcessPoolExecutor(args.procs, mp_context=get_context("spawn")) as procs:
                shares = [
                    loop.run_in_executor(
                        procs, client_process, base, cookie, urls[i :: args.procs], window
                    )
                    for i in range(args.procs)
                ]
                await asyncio.sleep(max(0.0, start - time.time()))
                print(f"{args.streams} streams ({args.scope}) in {args.procs} client processes")
                cpu0, t0 = cpu_seconds(web.pid), time.monotonic()
                written = await write(pool, args.rate, args.seconds)
                cpu = (cpu_seconds(web.pid) - cpu0) / (time.monotonic() - t0)
                mem = memory_kib(web.pid)
                lat = sorted(
                    x for share in await asyncio.gather(*shares) for x in array("d", share)
                )
        finally:
            web.terminate()
            await asyncio.wait_for(web.wait(), 30)
            await pool.close()
    per_stream = written if args.scope == "all" else written / TICKETS
    expected = round(per_stream * args.streams)
    q = statistics.quantiles(lat, n=100)
    print(
        f"{written} changes at {args.rate}/s over {args.seconds:.0f} s; "
        f"{len(lat)} deliveries of {expected} expected"
    )
    print(
        f"commit -> event received: p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, "
        f"max {lat[-1] * 1000:.0f} ms"
    )
    print(
        f"web process: CPU {cpu * 100:.0f}% of one core, RSS {mem['VmRSS'] / 1024:.0f} MiB "
        f"(peak {mem['VmHWM'] / 1024:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200, help="open SSE streams")
    parser.add_argument("--rate", type=float, default=50.0, help="ticket changes a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they change")
    parser.add_argument("--scope", choices=["all", "ticket"], default="all")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds to open streams")
    args = parser.parse_args()
    configure_logging("warning")
    print(f"web benchmark: {args.streams} streams, {args.rate}/s, {os.cpu_count()} cores")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
