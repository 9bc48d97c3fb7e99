"""Liveness and readiness probes (no token): /healthz and /readyz."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final, Literal

import msgspec
import nats
import nats.errors
import psycopg
from litestar import get

from api.errors import NotReady
from api.services import Deps, Services
from api.web import problems

_TIMEOUT: Final = 1.0
Check = Literal["ok", "down"]


class Alive(msgspec.Struct):
    status: Literal["ok"] = "ok"


class Ready(msgspec.Struct):
    status: Literal["ready"]
    checks: dict[str, Check]


@get("/healthz", operation_id="healthz", summary="Liveness", tags=["probes"])
async def healthz() -> Alive:
    """The process is alive (depends on nothing else)."""
    return Alive()


@get(
    "/readyz", operation_id="readyz", summary="Readiness", tags=["probes"], responses=problems(503)
)
async def readyz(services: Deps) -> Ready:
    """PostgreSQL and NATS are reachable; a 503 says which dependency is down."""
    postgres, nats_ = await asyncio.gather(_postgres(services), _nats(services.settings.nats_url))
    checks: dict[str, Check] = {"postgres": postgres, "nats": nats_}
    if "down" in checks.values():
        raise NotReady(dict(checks))
    return Ready(status="ready", checks=checks)


async def _postgres(services: Services) -> Check:
    try:
        async with asyncio.timeout(_TIMEOUT), services.pool.connection(timeout=_TIMEOUT) as conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, TimeoutError):
        return "down"
    return "ok"


async def _quiet(_: Exception) -> None:
    """The probe reports the failure; nats-py need not log it too."""


async def _nats(url: str) -> Check:
    try:
        # The deadline is ours: nats-py would keep selecting an unreachable server otherwise.
        async with asyncio.timeout(_TIMEOUT):
            client = await nats.connect(
                url,
                connect_timeout=_TIMEOUT,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                name="odoofleet-readyz",
                error_cb=_quiet,
            )
    except (nats.errors.Error, OSError, TimeoutError):
        return "down"
    with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
        await client.close()
    return "ok"
