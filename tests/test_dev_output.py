"""`odoofleet dev` on a port already taken: one line saying so, exit status 2, and nothing
started (the rest of dev's output is tested with the browser, tests/test_console_browser.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


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
