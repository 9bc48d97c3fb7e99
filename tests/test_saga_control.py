"""Start, stop and restart of the active colour, and a blue/green redeploy, each confirmed on
the server before its outcome is recorded."""

from __future__ import annotations

import pytest_asyncio
from saga_fixtures import (  # noqa: F401
    Fleet,
    Instance,
    bare_fleet_fixture,
    fleet_fixture,
    read_text,
    steps_of,
)
from sshd_harness import port_open
from waiting import eventually

from events.instance import (
    ActionFailed,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
)
from events.operation import OperationStarted, OperationStepCompleted, OperationSucceeded


@pytest_asyncio.fixture
async def running(fleet: Fleet) -> Instance:
    server_id = await fleet.register_server()
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)
    return instance


def state(fleet: Fleet, container: str) -> str:
    found = fleet.sshd.container(container)
    return "missing" if found is None else str(found["State"]["Status"])


async def test_stop_stops_the_active_colour_and_confirms_it(
    fleet: Fleet, running: Instance
) -> None:
    operation_id = await fleet.control(running, "stop")

    stopped = await fleet.wait_for(running.stream, InstanceStopped, ActionFailed)

    assert isinstance(stopped, InstanceStopped), stopped
    assert stopped.operation_id == operation_id
    assert state(fleet, "acme-blue-odoo-1") == "exited"
    assert not port_open(running.http_port_host)
    operation = await fleet.operation(operation_id)
    assert isinstance(operation[0], OperationStarted)
    assert operation[0].type == "stop"
    assert steps_of(operation, OperationStepCompleted) == ["app-stop", "stopped"]
    assert isinstance(operation[-1], OperationSucceeded)


async def test_start_brings_a_stopped_instance_back_and_checks_it_is_ready(
    fleet: Fleet, running: Instance
) -> None:
    await fleet.control(running, "stop")
    await fleet.wait_for(running.stream, InstanceStopped)

    operation_id = await fleet.control(running, "start")
    started = await fleet.wait_for(running.stream, InstanceStarted, ActionFailed)

    assert isinstance(started, InstanceStarted), started
    assert state(fleet, "acme-blue-odoo-1") == "running"
    operation = await fleet.operation(operation_id)
    assert steps_of(operation, OperationStepCompleted) == ["app-up", "readiness"]


async def test_restart_restarts_in_place_and_records_when(fleet: Fleet, running: Instance) -> None:
    operation_id = await fleet.control(running, "restart")

    restarted = await fleet.wait_for(running.stream, InstanceRestarted, ActionFailed)

    assert isinstance(restarted, InstanceRestarted), restarted
    assert restarted.restarted_at.tzinfo is not None
    operation = await fleet.operation(operation_id)
    assert steps_of(operation, OperationStepCompleted) == ["app-restart", "readiness"]


async def test_a_restart_that_does_not_become_ready_fails_with_its_step(
    fleet: Fleet, running: Instance
) -> None:
    fleet.sshd.arm("readiness")

    await fleet.control(running, "restart")
    failed = await fleet.wait_for(running.stream, ActionFailed, InstanceRestarted)

    assert isinstance(failed, ActionFailed), failed
    assert (failed.action, failed.step) == ("restart", "readiness")
    assert "unhealthy" in failed.message


async def test_a_redeploy_switches_to_the_idle_colour_once_it_is_ready(
    fleet: Fleet, running: Instance
) -> None:
    operation_id = await fleet.redeploy(running, "green")

    redeployed = await fleet.wait_for(running.stream, InstanceRedeployed, ActionFailed)

    assert isinstance(redeployed, InstanceRedeployed), redeployed
    assert redeployed.active_color == "green"
    route = read_text(f"{fleet.root}/_proxy/routes/acme.conf")
    assert "acme-green-odoo-1" in route
    assert "acme-blue-odoo-1" not in route
    assert read_text(f"{fleet.root}/acme/active_color") == "green\n"
    assert state(fleet, "acme-green-odoo-1") == "running"
    assert state(fleet, "acme-blue-odoo-1") == "exited"
    operation = await fleet.operation(operation_id)
    assert steps_of(operation, OperationStepCompleted) == [
        "app-up-green",
        "readiness-green",
        "route-green",
        "stop-blue",
    ]


async def test_a_redeploy_whose_colour_is_not_ready_leaves_the_old_one_serving(
    fleet: Fleet, running: Instance
) -> None:
    fleet.sshd.arm("login-page")

    await fleet.redeploy(running, "green")
    failed = await fleet.wait_for(running.stream, ActionFailed, InstanceRedeployed)

    assert isinstance(failed, ActionFailed), failed
    assert (failed.action, failed.step) == ("redeploy", "readiness-green")
    assert "acme-blue-odoo-1" in read_text(f"{fleet.root}/_proxy/routes/acme.conf")
    assert state(fleet, "acme-blue-odoo-1") == "running"


async def test_a_redeploy_that_fails_stops_the_colour_it_started(
    fleet: Fleet, running: Instance
) -> None:
    """Left running, a colour that never became ready would loop on its restarts (and slowed
    the next redeploy's start from 1.2 s to 29 s on real Docker)."""
    fleet.sshd.arm("login-page")

    await fleet.redeploy(running, "green")
    failed = await fleet.wait_for(running.stream, ActionFailed, InstanceRedeployed)

    assert isinstance(failed, ActionFailed), failed
    assert failed.step == "readiness-green"
    assert "acme-green-odoo-1 was stopped" in failed.message
    assert state(fleet, "acme-green-odoo-1") == "exited"
    assert state(fleet, "acme-blue-odoo-1") == "running"


async def test_readiness_fails_fast_when_the_new_colour_restarts(
    fleet: Fleet, running: Instance
) -> None:
    """A crash-looping colour is "running, health starting" at most looks; its restart count
    rising is what gives it away, long before the readiness deadline."""
    fleet.sshd.arm("login-page")  # keeps readiness waiting on the login page
    await fleet.redeploy(running, "green")

    def green_inspections() -> int:
        argvs = fleet.sshd.docker_argvs()
        return sum(1 for a in argvs if a[1:2] == ["inspect"] and "acme-green-odoo-1" in a)

    async def looked_twice() -> bool:
        return green_inspections() >= 2  # the first look set the baseline

    await eventually(looked_twice, timeout=10, interval=0.02, message="two looks at green")
    fleet.sshd.override_container("acme-green-odoo-1", RestartCount=2)
    failed = await fleet.wait_for(running.stream, ActionFailed, InstanceRedeployed)

    assert isinstance(failed, ActionFailed), failed
    assert failed.step == "readiness-green"
    assert "acme-green-odoo-1 crashed and was restarted 2x while starting" in failed.message
    assert "not within" not in failed.message
