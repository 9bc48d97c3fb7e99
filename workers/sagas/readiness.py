"""Waiting, with a deadline, for what a step must see before it counts as done: an app colour
ready (ODOO-HOSTING.md §2.7), or an app colour stopped. (The database's health is awaited on
the server: workers/server/commands.py, wait_db_healthy_command.)"""

from __future__ import annotations

import asyncio
import time

import msgspec

from workers.server.commands import (
    NOT_READY,
    ContainerStatus,
    parse_container_status,
    readiness_look_commands,
    wait_stopped_command,
)
from workers.server.layout import InstanceLayout
from workers.server.payload import Payload
from workers.server.remote import NotYet, Remote, StepError, failure_text
from workers.server.step_report import ScriptedStep
from workers.ssh.runner import KILL_GRACE_SECONDS, CommandResult


class Patience(msgspec.Struct, frozen=True):
    timeout: float  # for the whole wait
    interval: float  # between two looks
    command_limit: float = 30.0  # for one look


async def wait_ready(
    remote: Remote, layout: InstanceLayout, color: str, db_name: str, patience: Patience
) -> str:
    """The container runs and is healthy, /web/health passes, and the login page of the
    instance's database answers: the colour may get traffic. Each look asks all three in
    one command (workers/server/commands.py, readiness_look_commands), and a container
    still starting is watched on the server for a while before the look answers, so a
    colour that takes a minute to start costs a few round trips, not one per interval.

    A colour that crashes fails at once rather than at the deadline: exited, OOM-killed,
    restarting, unhealthy, or restarted since the first look. Docker restarts a crashing
    container within a fraction of a second, so most looks see it "running, starting"; its
    restart count is what gives a crash loop away (ODOO-HOSTING.md §2.7)."""
    name = layout.app_container(color)
    deadline = time.monotonic() + patience.timeout
    baseline: list[int] = []  # the restart count at the first look

    def crashed(seen: ContainerStatus) -> None:
        if seen.oom_killed:
            raise StepError(f"{name} was killed for want of memory (OOM)")
        if seen.status in ("exited", "dead"):
            raise StepError(f"{name} exited with code {seen.exit_code}")
        if seen.status == "restarting":
            raise StepError(f"{name} keeps restarting (restarted {seen.restart_count}x)")
        if seen.restart_count > baseline[0]:
            restarts = seen.restart_count - baseline[0]
            raise StepError(
                f"{name} crashed and was restarted {restarts}x while starting "
                f"(last exit code {seen.exit_code})"
            )
        if seen.health == "unhealthy":
            raise StepError(f"{name} is unhealthy: its /web/health check fails")

    phases = [
        f"{name} running and healthy",
        f"/web/health of {name} passing",
        f"the login page of {db_name} answering",
    ]
    reached = [0]  # the phase the looks got to: once passed, /web/health is not asked again

    async def look() -> str | NotYet:
        left = max(0.0, deadline - time.monotonic())
        watch = int(min(left, patience.command_limit / 2))
        parts = readiness_look_commands(layout, color, db_name, watch, patience.interval)
        limits = [patience.command_limit + watch, patience.command_limit, patience.command_limit]
        asked = [ScriptedStep(part, limit) for part, limit in zip(parts, limits, strict=True)]
        if reached[0] == 2:
            del asked[1]
        results: list[CommandResult] = []

        async def reported(result: CommandResult) -> None:
            results.append(result)

        whole = await remote.run_steps(asked, Payload(), reported)
        if not results:
            return NotYet(failure_text(whole))
        status = results.pop(0)
        if status.exit_status not in (0, NOT_READY):
            return NotYet(failure_text(status))
        try:
            first, seen = (parse_container_status(line) for line in status.stdout.splitlines())
        except ValueError:
            return NotYet(f"unexpected status {status.stdout.strip()[:200]!r}")
        if not baseline:
            baseline.append(first.restart_count)
        crashed(seen)
        if status.exit_status == NOT_READY:
            return NotYet(f"{seen.status}, health {seen.health}")
        if reached[0] < 2:
            reached[0] = 1
            health = results.pop(0) if results else whole
            if not health.ok:
                said = health.stdout.strip() if health.exit_status == NOT_READY else ""
                return NotYet(said or failure_text(health))
            reached[0] = 2
        login = results.pop(0) if results else whole
        if not login.ok:
            return NotYet(failure_text(login))
        return "\n".join(
            [
                f"{name} is running ({seen.health})",
                "/web/health: pass",
                f"login page of {db_name}: HTTP 200",
            ]
        )

    while True:
        value = await look()
        if not isinstance(value, NotYet):
            return value
        if time.monotonic() >= deadline:
            waited_for = f"{phases[reached[0]]} not within {patience.timeout:g}s"
            raise StepError(f"{waited_for}; last seen: {value.seen}")
        await asyncio.sleep(patience.interval)


async def wait_stopped(
    remote: Remote, layout: InstanceLayout, color: str, patience: Patience
) -> str:
    """The colour's container exited, awaited on the server: one round trip."""
    return await remote.check(
        wait_stopped_command(layout, color, *waited(patience)), time_limit=wait_limit(patience)
    )


def waited(patience: Patience) -> tuple[float, float, float]:
    """What a wait on the server (workers/server/commands.py, poll_command) is given."""
    return patience.timeout, patience.interval, patience.command_limit


def wait_limit(patience: Patience) -> float:
    """The time limit of a command that waits as `patience` says: its last look may begin
    just before the deadline."""
    return patience.timeout + patience.command_limit + KILL_GRACE_SECONDS
