"""Helpers of the reliability tests: odoofleet entry points run as real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
from waiting import eventually

from odoofleet.embedded import free_port
from odoofleet.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment under which an `odoofleet` subprocess reads exactly these settings."""
    return os.environ | {
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "ODOOFLEET_SECRET_KEY": settings.secret_key,
        "ODOOFLEET_JWT_SECRET": settings.jwt_secret,
        "ODOOFLEET_NATS_STREAM": settings.nats_stream,
        "ODOOFLEET_SUBJECT_PREFIX": settings.subject_prefix,
        "ODOOFLEET_SERVER_ALLOWED_NETWORKS": settings.server_allowed_networks,
        "ODOOFLEET_LOG_FORMAT": "text",
        "ODOOFLEET_LOG_LEVEL": "WARNING",
    }


def start_odoofleet(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "odoofleet", *args],
        env=settings_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(timeout=20)


@contextmanager
def running(settings: Settings, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_odoofleet(settings, *args)
    try:
        yield proc
    finally:
        stop(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@asynccontextmanager
async def served_api(settings: Settings) -> AsyncIterator[str]:
    """`odoofleet serve` on the test's database (projections run in the test); yields its URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with running(settings, "serve", "--port", str(port)):
        await eventually(lambda: _answers(f"{base_url}/healthz"), 30, 0.1, "the API answering")
        yield base_url
