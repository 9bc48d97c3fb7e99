"""`odoofleet dev`'s output: a port already taken is one line, exit status 2, and nothing
started; `--verbose` logs every request. The quiet default (banner, no warnings, no access
log, one line at Ctrl-C) is tested with the browser, tests/test_console_browser.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import nats
from sshd_harness import free_port
from waiting import eventually


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONWARN")}
        done = subprocess.run(
            [sys.executable, "-m", "odoofleet", "dev", "--sandbox-server",
             "--port", str(port), "--data-dir", str(tmp_path / "data")],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"odoofleet dev: port {port} on 127.0.0.1 is in use (another odoofleet dev?); try --port"
    ]
    assert not (tmp_path / "data").exists()  # no embedded database started for nothing


async def stop_dev(process: asyncio.subprocess.Process) -> None:
    """Ctrl-C, as a developer stops it; its whole session killed if it has not ended in a
    minute."""
    process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def test_verbose_logs_every_request(
    database_url: str, nats_server_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "dev.log"
    tag = secrets.token_hex(4)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ODOOFLEET_", "PYTHONWARN"))},
        "DATABASE_URL": database_url,
        "NATS_URL": nats_server_url,
        "ODOOFLEET_NATS_STREAM": f"TEST_VERBOSE_{tag.upper()}",
        "ODOOFLEET_SUBJECT_PREFIX": f"verbose{tag}",
    }
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "odoofleet", "dev", "--verbose",
            "--port", str(port), "--data-dir", str(tmp_path / "data"),
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        await eventually(
            lambda: "  token:" in log.read_text() or process.returncode is not None,
            timeout=120,
            interval=0.1,
            message="odoofleet dev's banner",
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200
        await eventually(
            lambda: '"GET /healthz HTTP/1.1" 200' in log.read_text(),
            message="the request in the log",
        )
    finally:
        await stop_dev(process)
        nc = await nats.connect(nats_server_url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(f"TEST_VERBOSE_{tag.upper()}")
        finally:
            await nc.close()
    assert "INFO" in log.read_text()
    assert log.read_text().rstrip().endswith("odoofleet dev stopped.")
