"""CPU per request of each process, odoofleet beside the bare baseline (issue 19: where the gap
goes).

    python -m bench.api_cpu [--database-url URL] [--nats-url URL] [--seconds N]
        [--endpoint E ...] [--connections N ...]

The same processes as `bench.api` (one uvicorn per app, the projections in a third process,
PostgreSQL and NATS on the same machine), the same seeding and the same requests. A turn's
figure is the CPU time (user + system, from /proc) that each group of processes used from the
end of the turn's 1 s warm-up until every projection has applied what the turn appended,
divided by the requests answered in the turn's window. The groups: the app's own process, the
projections process, PostgreSQL (all its processes: the app's backends and the projections'),
NATS, and this client. Requests still in flight when the window closes are not counted, so
the figures are a little high for both apps. Turns alternate the two apps; each figure is the
median of its turns. Prints only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from pathlib import Path
from typing import Final

from bench.api import (
    CONCURRENCY,
    ENDPOINTS,
    RUNNING,
    Seeded,
    load,
    requests_for,
    running_stack,
    seed,
    seed_running,
    settled,
)

GROUPS: Final = ("app", "projections", "postgres", "nats", "client")
_TICK: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(app: int, projections: int) -> dict[str, float]:
    """CPU seconds used so far by each group's processes that are still running."""
    used = dict.fromkeys(GROUPS, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "comm").read_text().strip()
        except OSError:
            continue  # ended meanwhile
        group = {app: "app", projections: "projections", os.getpid(): "client"}.get(pid)
        if group is None and command.startswith(("postgres", "nats")):
            group = "postgres" if command.startswith("postgres") else "nats"
        if group is not None:
            used[group] += (int(fields[11]) + int(fields[12])) / _TICK
    return used


Turn = tuple[float, dict[str, float]]
"""A turn's requests per second, and CPU seconds per request of each group."""


def row(endpoint: str, connections: int, app: str, turns: list[Turn]) -> str:
    rate = statistics.median(t[0] for t in turns)
    per = {g: statistics.median(t[1][g] for t in turns) for g in GROUPS}
    cells = " | ".join(f"{per[g] * 1000:.3f}" for g in GROUPS)
    return (
        f"| {endpoint} | {connections} | {app} | {rate:,.0f} | {cells}"
        f" | {sum(per.values()) * 1000:.3f} |"
    )


async def run(args: argparse.Namespace) -> None:
    print("| endpoint | conns | app | req/s | " + " | ".join(f"{g} ms" for g in GROUPS)
          + " | total ms |\n|---|---:|---|---:|" + "---:|" * (len(GROUPS) + 1))  # fmt: skip
    async with running_stack(args.database_url, args.nats_url) as stack:
        pool = stack.pool
        ids, servers = await seed(stack.real, stack.token, pool)
        seeded = Seeded(ids, servers, iter(()))
        apps = (
            ("baseline", stack.bare, "/baseline", None, stack.baseline.pid),
            ("odoofleet", stack.real, "/api", stack.token, stack.ours.pid),
        )
        for endpoint in args.endpoints:
            for connections in args.concurrency:
                if endpoint in ("POST control", "DELETE"):
                    seeded.running = iter(await seed_running(pool, servers, RUNNING))
                await settled(pool)
                turns: dict[str, list[Turn]] = {}
                for _ in range(args.turns):
                    for app, port, prefix, auth, pid in apps:
                        requests = requests_for(endpoint, prefix, auth, seeded)
                        await load(port, requests, connections, 0.0, 1.0)  # warm-up
                        before = cpu_seconds(pid, stack.projections.pid)
                        cell = await load(port, requests, connections, 0.0, args.seconds)
                        await settled(pool)
                        after = cpu_seconds(pid, stack.projections.pid)
                        answered = max(1, len(cell.latencies))
                        per = {g: (after[g] - before[g]) / answered for g in GROUPS}
                        turns.setdefault(app, []).append((cell.rate, per))
                for app, *_ in apps:
                    print(row(endpoint, connections, app, turns[app]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_cpu", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--seconds", type=float, default=4.0, help="per turn (default: 4)")
    parser.add_argument("--turns", type=int, default=3, help="per app (default: 3)")
    parser.add_argument("--endpoint", action="append", choices=ENDPOINTS)
    parser.add_argument("--connections", action="append", type=int, choices=CONCURRENCY)
    args = parser.parse_args()
    args.endpoints = args.endpoint or ["GET detail", "PATCH update"]
    args.concurrency = args.connections or [1, 16]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
