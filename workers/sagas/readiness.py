"""Waiting, with a deadline, for what a step must see before it counts as done: the database
healthy, an app colour ready (ODOO-HOSTING.md §2.7), or an app colour stopped."""

from __future__ import annotations

import time

import msgspec

from workers.server.commands import (
    ContainerStatus,
    app_health_command,
    container_status_command,
    db_health_command,
    login_page_command,
    parse_container_status,
)
from workers.server.layout import InstanceLayout
from workers.server.remote import NotYet, Remote, StepError, failure_text, poll


class Patience(msgspec.Struct, frozen=True):
    timeout: float  # for the whole wait
    interval: float  # between two looks
    command_limit: float = 30.0  # for one look


async def wait_db_healthy(remote: Remote, layout: InstanceLayout, patience: Patience) -> str:
    async def look() -> str | NotYet:
        result = await remote.run(db_health_command(layout), time_limit=patience.command_limit)
        health = result.stdout.strip() if result.ok else failure_text(result)
        if health == "healthy":
            return f"{layout.db_container} is healthy"
        if health == "unhealthy":
            raise StepError(f"{layout.db_container} is unhealthy: PostgreSQL does not answer")
        return NotYet(health)

    wait = f"{layout.db_container} becoming healthy"
    return await poll(look, within=patience.timeout, interval=patience.interval, waiting_for=wait)


async def wait_ready(
    remote: Remote, layout: InstanceLayout, color: str, db_name: str, patience: Patience
) -> str:
    """The container runs and is healthy, /web/health passes, and the login page of the
    instance's database answers: the colour may get traffic.

    A colour that crashes fails at once rather than at the deadline: exited, OOM-killed,
    restarting, unhealthy, or restarted since the first look. Docker restarts a crashing
    container within a fraction of a second, so most looks see it "running, starting"; its
    restart count is what gives a crash loop away (ODOO-HOSTING.md §2.7). The container is
    looked at again whenever a later probe fails, so a crash while its health or login page
    is awaited fails fast too."""
    name = layout.app_container(color)
    deadline = time.monotonic() + patience.timeout
    baseline: list[int] = []  # the restart count at the first look

    async def state() -> ContainerStatus | NotYet:
        command = container_status_command(layout, color)
        result = await remote.run(command, time_limit=patience.command_limit)
        if not result.ok:
            return NotYet(failure_text(result))
        seen = parse_container_status(result.stdout)
        if not baseline:
            baseline.append(seen.restart_count)
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
        return seen

    async def container() -> str | NotYet:
        seen = await state()
        if isinstance(seen, NotYet):
            return seen
        if seen.status == "running" and seen.health in ("healthy", "none"):
            return f"{name} is running ({seen.health})"
        return NotYet(f"{seen.status}, health {seen.health}")

    async def health() -> str | NotYet:
        command = app_health_command(layout, color)
        result = await remote.run(command, time_limit=patience.command_limit)
        if result.ok and '"pass"' in result.stdout:
            return "/web/health: pass"
        await state()
        return NotYet(failure_text(result) if not result.ok else result.stdout.strip())

    async def login() -> str | NotYet:
        command = login_page_command(layout, color, db_name)
        result = await remote.run(command, time_limit=patience.command_limit)
        if result.ok:
            return f"login page of {db_name}: HTTP 200"
        await state()
        return NotYet(failure_text(result))

    seen = []
    for what, look in (
        (f"{name} running and healthy", container),
        (f"/web/health of {name} passing", health),
        (f"the login page of {db_name} answering", login),
    ):
        left = max(0.0, deadline - time.monotonic())
        seen.append(await poll(look, within=left, interval=patience.interval, waiting_for=what))
    return "\n".join(seen)


async def wait_stopped(
    remote: Remote, layout: InstanceLayout, color: str, patience: Patience
) -> str:
    name = layout.app_container(color)

    async def look() -> str | NotYet:
        command = container_status_command(layout, color)
        result = await remote.run(command, time_limit=patience.command_limit)
        if not result.ok:
            return NotYet(failure_text(result))
        state = parse_container_status(result.stdout).status
        return f"{name} is {state}" if state in ("exited", "created") else NotYet(state)

    wait = f"{name} stopping"
    return await poll(look, within=patience.timeout, interval=patience.interval, waiting_for=wait)
