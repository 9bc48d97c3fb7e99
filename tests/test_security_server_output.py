"""A tenant's own server answering the health command with hostile output (issue 13, item 2):
a `docker stats` MemUsage of 40,000 digits, a `docker inspect` of 300 MB. The health cycle
ends with a recorded failure or a sample without the field, the event loop is never held
100 ms while the app's /healthz is asked throughout, and the process's memory stays flat."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from api_fixtures import client_of, serving
from health_fixtures import HealthWorld
from loopback_fixtures import loopback_settings_fixture  # noqa: F401
from sshd_harness import SshdServer

from api.app import create_app
from events.pool import Pool
from odoofleet.sandbox.server import STANDIN_DIR
from odoofleet.settings import Settings
from workers.health.observer import CycleReport
from workers.health.probe import parse_health_output
from workers.server.facts import MAX_FACT_CHARS, parse_server_facts
from workers.ssh.runner import DEFAULT_OUTPUT_LIMIT

pytestmark = pytest.mark.heavy

# Our own work may hold the loop 100 ms at most; the answer may wait longer on a CI machine
# whose cores other processes share (up to ~170 ms seen at load 10 on 2 cores), never the
# 36 to 94 s the quadratic parse took.
MAX_HELD_SECONDS = 0.1
MAX_HEALTHZ_SECONDS = 1.0
MAX_RSS_GROWTH_BYTES = 50 * 2**20
INSPECT_BYTES = 300 * 10**6
PAUSE_SECONDS = 0.01

# The real stand-in for everything, unless a switch file in this directory says otherwise.
HOSTILE_DOCKER = f"""#!/bin/sh
here=$(dirname "$0")
case "$1" in
  stats)
    if [ -e "$here/stats" ]; then
      printf '{{"Name":"%s","CPUPerc":"1.00%%","MemUsage":"%s / 1GiB"}}\\n' \\
        "$(cat "$here/stats")" "$(head -c 40000 /dev/zero | tr '\\0' '1')"
      exit 0
    fi ;;
  inspect)
    if [ -e "$here/inspect" ]; then
      head -c {INSPECT_BYTES} /dev/zero | tr '\\0' 'x'
      exit 0
    fi ;;
esac
exec {STANDIN_DIR}/docker "$@"
"""


class HostileSshd(SshdServer):
    """The test sshd, with a `docker` of this test's own first in its sessions' PATH."""

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.hostile = base / "hostile-bin"
        self.hostile.mkdir()
        docker = self.hostile / "docker"
        docker.write_text(HOSTILE_DOCKER)
        docker.chmod(0o755)

    def _config(self, key_file: Path) -> str:
        config = super()._config(key_file)
        path = f'"PATH={STANDIN_DIR}'
        assert path in config
        return config.replace(path, f'"PATH={self.hostile}:{STANDIN_DIR}')

    def start(self) -> None:
        super().start()
        # The server is another machine in production; here it shares this one's two cores.
        # At the lowest priority its 300 MB cannot starve the process under test of CPU,
        # which would look like a held event loop. Its sessions inherit the priority.
        assert self._process is not None
        os.setpriority(os.PRIO_PROCESS, self._process.pid, 19)

    def answer_stats_with_digits(self, container: str) -> None:
        (self.hostile / "stats").write_text(container)

    def answer_inspect_with_300_mb(self) -> None:
        (self.hostile / "inspect").touch()


@pytest.fixture(name="sshd")
def hostile_sshd_fixture(tmp_path: Path) -> Iterator[HostileSshd]:
    server = HostileSshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class Watch:
    """While a health cycle ran: /healthz's slowest answer, the most CPU this thread spent
    between asking and being answered (the event loop held by our own work, not a machine
    whose other processes took the cores), and the highest RSS."""

    def __init__(self) -> None:
        self.slowest = 0.0
        self.held = 0.0
        self.highest_rss = 0
        self.answers = 0

    def check(self) -> None:
        assert self.answers > 0
        shown = f"/healthz took {self.slowest:.3f}s, the loop held {self.held:.3f}s"
        assert self.held < MAX_HELD_SECONDS, shown
        assert self.slowest < MAX_HEALTHZ_SECONDS, shown


async def _cycle_watched(
    world: HealthWorld, settings: Settings, pool: Pool
) -> tuple[CycleReport, Watch]:
    watch = Watch()
    async with serving(create_app(settings.for_api(), pool=pool)) as app, client_of(app) as client:
        cycle = asyncio.create_task(world.observer.observe_once())
        while not cycle.done():
            # From the moment a request could arrive, the pause included: a loop held by
            # the cycle delays the end of the pause, not the request that follows it.
            started, cpu = time.monotonic(), time.thread_time()
            await asyncio.sleep(PAUSE_SECONDS)
            response = await client.get("/healthz")
            watch.slowest = max(watch.slowest, time.monotonic() - started - PAUSE_SECONDS)
            watch.held = max(watch.held, time.thread_time() - cpu)
            watch.highest_rss = max(watch.highest_rss, _rss())
            watch.answers += 1
            assert response.status_code == 200
        return await cycle, watch


async def test_a_40000_digit_memory_usage_is_read_without_holding_the_event_loop(
    health_world: HealthWorld, settings: Settings, pool: Pool
) -> None:
    sshd = health_world.fleet.sshd
    assert isinstance(sshd, HostileSshd)
    sshd.answer_stats_with_digits(health_world.app_container)

    report, watch = await _cycle_watched(health_world, settings, pool)

    assert report.appended == 1
    watch.check()
    health = await health_world.projected()
    assert (health.status, health.container_state) == ("healthy", "running")
    assert health.memory_bytes is None  # the absurd field is dropped, the rest is read


async def test_a_300_mb_inspect_fails_the_cycle_with_flat_memory_and_a_quick_healthz(
    health_world: HealthWorld, settings: Settings, pool: Pool
) -> None:
    sshd = health_world.fleet.sshd
    assert isinstance(sshd, HostileSshd)
    sshd.answer_inspect_with_300_mb()
    before = _rss()

    report, watch = await _cycle_watched(health_world, settings, pool)

    assert report.appended == 1
    watch.check()
    growth = max(watch.highest_rss, _rss()) - before
    assert growth < MAX_RSS_GROWTH_BYTES, f"RSS grew by {growth / 2**20:.0f} MB"
    [observed] = await health_world.observations()
    print("MESSAGE", observed.message[:300], growth, watch.slowest)
    assert observed.status == "unknown"
    assert f"output over {DEFAULT_OUTPUT_LIMIT} bytes" in observed.message


def test_hostile_health_fields_are_dropped_in_linear_time() -> None:
    line = {
        "instanceId": "5f0c6a52-2b0e-4a8c-9d7e-0d6f2b9a1c3e",
        "container": "acme-blue-odoo-1",
        "inspect": None,
        "stats": {"CPUPerc": "9" * 40000 + "%", "MemUsage": "1" * 40000 + " / " + "2" * 40000},
        "probe": "2" * 40000 + " " + "1" * 40000,
    }
    started = time.thread_time()
    [sample] = parse_health_output(msgspec.json.encode(line).decode())
    assert time.thread_time() - started < 0.05
    assert (sample.cpu_percent, sample.memory_bytes, sample.memory_limit_bytes) == (None,) * 3
    assert (sample.http_status, sample.response_time_ms) == (None, None)


def test_server_facts_keep_known_keys_cut_to_their_limit() -> None:
    output = "os_name=" + "x" * 100000 + "\ncpu_cores=" + "9" * 5000 + "\n"
    output += "".join(f"junk{n}=1\n" for n in range(10000))
    facts = parse_server_facts(output)
    assert facts.os_name == "x" * MAX_FACT_CHARS
    assert facts.cpu_cores == 0
