"""Where an API write's CPU goes: the real app in this process, profiled per request.

    python -m bench.profile_api [--database-url URL] [--requests N] [--endpoint NAME] [--top K]

A fresh database (migrated, dropped at the end), the app (`api.app.create_app`) served in
process through httpx's ASGI transport, eight servers registered through the API, then N
sequential requests of one endpoint under cProfile. Prints the wall and process CPU time per
request (the client's and the transport's share included: run the same N against
`--endpoint none` for what the harness alone costs) and the top functions by own time and by
cumulative time. None of it is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from api.app import create_app
from api.services import open_api_pool
from api.tokens import mint_token
from bench.api import DEFAULT_DB, fresh_database
from events.catalog import build_registry
from events.instance import InstanceProvisioned, instance_stream
from events.metadata import Actor, EventMetadata
from events.migrate import migrate
from events.pool import Pool
from events.store import ANY, EventStore, NewEvents
from odoofleet.settings import load_settings
from projections.catalog import build_projections
from projections.runtime.rebuild import rebuild

# A read ("detail") is of instances the instances projection was rebuilt with beforehand: no
# projections run here, so a read of later writes would wait for them in vain.
ENDPOINTS = ("create", "patch", "delete", "control", "detail", "none")
PATCHED = 50
ORG = "org-bench"
ROOT = Path(__file__).resolve().parent.parent
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


async def profile(args: argparse.Namespace) -> None:
    # Imported here: the fixtures' serving() enters the app's lifespan in one task.
    from tests.api_fixtures import serving

    async with fresh_database(args.database_url) as url:
        await migrate(url)
        env = os.environ | {
            "DATABASE_URL": url,
            "ODOOFLEET_JWT_SECRET": secrets.token_urlsafe(48),
            "ODOOFLEET_SECRET_KEY": secrets.token_urlsafe(32),
            "ODOOFLEET_LOG_FORMAT": "text",
        }
        settings = load_settings(env)
        token = mint_token(
            settings.for_api(),
            org=ORG,
            sub="bench",
            permissions=["manage:instances", "manage:servers"],
            ttl_seconds=3600,
        )
        pool = await open_api_pool(settings.for_api())
        transport = httpx.ASGITransport(app=create_app(settings.for_api(), pool=pool))
        async with (
            serving(transport.app) as _,  # type: ignore[arg-type]
            httpx.AsyncClient(
                transport=transport,
                base_url="http://bench",
                headers={"Authorization": f"Bearer {token}"},
            ) as client,
        ):
            servers = []
            for n in range(8):
                body = {"name": f"s{n}", "host": f"10.0.0.{n + 1}", "sshUser": "deploy",
                        "authMethod": "key", "sshPrivateKey": KEY}  # fmt: skip
                servers.append((await client.post("/api/servers", json=body)).json()["id"])
            ids = []
            for n in range(args.requests + 20):
                body = {"name": f"p {n}", "serverId": servers[n % 8], "envVars": {"A": "b"}}
                ids.append((await client.post("/api/instances", json=body)).json()["id"])
            if args.endpoint in ("control", "delete"):
                await _provisioned(pool, ids)
            if args.endpoint == "detail":
                await rebuild(pool, build_projections(build_registry())["instances"])
            send = _sender(args.endpoint, client, servers, ids)
            for n in range(20):
                await send(n)  # warm-up
            profiler = cProfile.Profile()
            wall, cpu = time.perf_counter(), time.process_time()
            if args.top:
                profiler.enable()
            for n in range(20, 20 + args.requests):
                await send(n)
            profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await pool.close()
    n = args.requests
    print(f"{args.endpoint}: {n} requests, wall {wall / n * 1000:.2f} ms and CPU"
          f" {cpu / n * 1000:.2f} ms per request ({'profiled' if args.top else 'no profiler'};"
          f" load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    if args.top:
        print(_by_package(profiler, wall))
    for order in ("tottime", "cumulative")[: 2 if args.top else 0]:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
        print(out.getvalue())


async def _provisioned(pool: Pool, ids: list[str]) -> None:
    """The instances running, as a worker would record them (what control and delete need;
    no worker runs here)."""
    store = EventStore(pool)
    meta = EventMetadata(actor=Actor("bench", "Bench"), org_id=ORG, correlation_id="bench")
    await store.append_batch(
        [
            NewEvents(
                instance_stream(i),
                ANY,
                [InstanceProvisioned(instance_id=i, operation_id="op", active_color="blue")],
                meta,
            )
            for i in ids
        ]
    )


def _by_package(profiler: cProfile.Profile, total: float) -> str:
    """Own time per package (site-packages name, stdlib module, or this repository's top-level
    package): where the CPU goes, coarsely."""
    shares: dict[str, float] = {}
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _, name), (_, _, own, _, _) in stats.items():
        if "site-packages/" in filename:
            key = filename.split("site-packages/")[1].split("/")[0]
        elif filename.startswith(str(ROOT)):
            key = filename[len(str(ROOT)) + 1 :].split("/")[0] + "/ (ours)"
        elif filename == "~":
            key = f"builtin {name.split(' of ')[-1]}"[:60]
        else:
            key = "stdlib " + os.path.basename(filename)
        shares[key] = shares.get(key, 0.0) + own
    lines = [f"{own / total * 100:5.1f}%  {key}" for key, own in
             sorted(shares.items(), key=lambda kv: -kv[1])[:25]]  # fmt: skip
    return "own time by package, share of the wall time:\n" + "\n".join(lines)


def _sender(
    endpoint: str, client: httpx.AsyncClient, servers: list[str], ids: list[str]
) -> Callable[[int], Awaitable[object]]:
    async def send(n: int) -> object:
        if endpoint == "create":
            body = {"name": f"b {secrets.token_hex(6)}", "serverId": servers[n % 8]}
            response = await client.post("/api/instances", json=body)
        elif endpoint == "patch":
            # As bench.api does: the same instances again and again (a write after a write).
            body2 = {"name": f"renamed {secrets.token_hex(4)}"}
            response = await client.patch(f"/api/instances/{ids[n % PATCHED]}", json=body2)
        elif endpoint == "delete":
            response = await client.delete(f"/api/instances/{ids[n]}")
        elif endpoint == "detail":
            response = await client.get(f"/api/instances/{ids[n]}")
        elif endpoint == "control":
            response = await client.post(
                f"/api/instances/{ids[n]}/control", json={"action": "restart"}
            )
        else:
            return None
        if response.status_code >= 500:
            raise RuntimeError(response.text)
        return response

    return send


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_api")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="create")
    parser.add_argument("--top", type=int, default=30, help="0: no profiler, figures only")
    asyncio.run(profile(parser.parse_args()))


if __name__ == "__main__":
    main()
