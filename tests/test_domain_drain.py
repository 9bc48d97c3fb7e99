"""A route switch waits for the previous configuration's nginx workers to exit before the
saga goes on to stop the old colour (workers/sagas/proxy_steps.py): the race where
`nginx -s reload` returned before the old workers stopped accepting requests."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.sagas.proxy_steps import drained_command, serving_workers_command

# `docker exec <container> sh -c …` run here instead: the scripts only read /proc.
FAKE_DOCKER = '#!/bin/sh\nshift 2\nexec "$@"\n'


@pytest.fixture
def path_with_docker(tmp_path: Path) -> dict[str, str]:
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


def _titled(title: str, seconds: float) -> subprocess.Popen[bytes]:
    """A process whose command line reads like an nginx worker's."""
    return subprocess.Popen(["bash", "-c", f'exec -a "{title}" sleep {seconds}'])


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _run(command: str, env: dict[str, str]) -> str:
    done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _listed_when_running(pid: int, env: dict[str, str]) -> set[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = set(_run(serving_workers_command(), env).split())
        if str(pid) in listed:
            return listed
    raise AssertionError(f"worker {pid} never listed")


def test_serving_workers_are_listed_and_shutting_down_ones_are_not(
    path_with_docker: dict[str, str], workers: list[subprocess.Popen[bytes]]
) -> None:
    serving = _titled("nginx: worker process", 30)
    leaving = _titled("nginx: worker process is shutting down", 30)
    workers += [serving, leaving]

    listed = _listed_when_running(serving.pid, path_with_docker)

    assert str(leaving.pid) not in listed


def test_the_wait_ends_when_the_old_workers_have_exited(
    path_with_docker: dict[str, str], workers: list[subprocess.Popen[bytes]]
) -> None:
    old = _titled("nginx: worker process", 1.5)
    workers.append(old)
    _listed_when_running(old.pid, path_with_docker)
    started = time.monotonic()

    said = _run(f"old={old.pid}; {drained_command(5)}", path_with_docker)

    assert old.poll() is not None, "the wait returned while the old worker still ran"
    assert "have exited" in said
    assert time.monotonic() - started < 5


def test_a_worker_that_outlives_the_deadline_is_reported_not_fatal(
    path_with_docker: dict[str, str], workers: list[subprocess.Popen[bytes]]
) -> None:
    held = _titled("nginx: worker process", 60)
    workers.append(held)

    said = _run(f"old={held.pid}; {drained_command(1)}", path_with_docker)

    assert f"still running after 1 s: {held.pid}" in said


def test_no_worker_found_waits_for_nothing(path_with_docker: dict[str, str]) -> None:
    assert _run(f'old=""; {drained_command(1)}', path_with_docker) == ""
