"""A provisioning step that fails leaves the instance `failed`, naming the step; starting the
instance then resumes the provisioning without redoing what was done, except the app colour,
which it creates anew."""

from __future__ import annotations

import pytest
from saga_fixtures import Fleet, bare_fleet_fixture, fleet_fixture, steps_of  # noqa: F401

from events.instance import InstanceProvisioned, ProvisioningFailed
from events.operation import (
    OperationFailed,
    OperationStarted,
    OperationStepCompleted,
    OperationStepFailed,
    OperationStepStarted,
)
from events.server import ServerValidated, server_stream

FAILURES = [
    ("docker-access", "preflight", "cannot use Docker"),
    ("compose-up-db", "db-up", "OCI runtime create failed"),
    ("db-healthy", "db-healthy", "is unhealthy"),
    ("create-db", "create-db", "Failed to initialize database"),
    ("compose-up-app", "app-up", "OCI runtime create failed"),
    ("readiness", "readiness", "acme-blue-odoo-1 is unhealthy"),
    ("health-probe", "readiness", "/web/health of acme-blue-odoo-1 passing not within"),
    ("login-page", "readiness", "answered HTTP 500"),
    ("compose-up-ports", "route", "OCI runtime create failed"),
    ("nginx-test", "route", "the previous one is back"),
]


@pytest.mark.parametrize(("switch", "step", "says"), FAILURES, ids=[f[0] for f in FAILURES])
async def test_a_failing_step_fails_the_provisioning_at_that_step(
    fleet: Fleet, switch: str, step: str, says: str
) -> None:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    fleet.sshd.arm(switch)

    instance = await fleet.create_instance(server_id)
    failed = await fleet.wait_for(instance.stream, ProvisioningFailed, InstanceProvisioned)

    assert isinstance(failed, ProvisioningFailed), failed
    assert failed.step == step
    assert says in failed.message
    operation = await fleet.operation(instance.operation_id)
    assert steps_of(operation, OperationStepFailed) == [step]
    assert isinstance(operation[-1], OperationFailed)
    assert operation[-1].step == step


async def test_starting_a_failed_instance_resumes_its_provisioning(fleet: Fleet) -> None:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    fleet.sshd.arm("login-page")
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, ProvisioningFailed)

    fleet.sshd.disarm("login-page")
    start = await fleet.control(instance, "start")
    provisioned = await fleet.wait_for(instance.stream, InstanceProvisioned)

    assert isinstance(provisioned, InstanceProvisioned)
    assert provisioned.operation_id == start
    operation = await fleet.operation(start)
    assert isinstance(operation[0], OperationStarted)
    assert operation[0].type == "start"
    # The checks look again and the app colour starts anew; what the failed provisioning did
    # is not done twice.
    assert steps_of(operation, OperationStepCompleted) == [
        "server",
        "preflight",
        "db-healthy",
        "app-up",
        "readiness",
        "route",
    ]
    argvs = fleet.sshd.docker_argvs()
    assert sum("up" in argv and "acme-db" in argv for argv in argvs) == 1
    assert sum("down" in argv and "acme-blue" in argv for argv in argvs) == 1
    assert sum("up" in argv and "acme-blue" in argv for argv in argvs) == 2
    assert sum("run" in argv for argv in argvs) == 2  # create-db, admin-password


@pytest.mark.parametrize("action", ["start", "restart"])
async def test_after_a_readiness_failure_start_and_restart_recreate_the_app_container(
    fleet: Fleet, action: str
) -> None:
    """The container that failed readiness stays unhealthy until it is created anew: resuming
    past app-up (issue 14) found the same sick container and failed again."""
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    fleet.sshd.arm("readiness")
    instance = await fleet.create_instance(server_id)
    failed = await fleet.wait_for(instance.stream, ProvisioningFailed)
    assert isinstance(failed, ProvisioningFailed)
    assert failed.step == "readiness"
    sick = fleet.sshd.container("acme-blue-odoo-1")
    assert sick is not None
    assert sick["State"]["Health"]["Status"] == "unhealthy"

    fleet.sshd.disarm("readiness")
    operation_id = await fleet.control(instance, action)
    await fleet.wait_ended(operation_id)

    [outcome] = [
        e
        for e in await fleet.events(instance.stream)
        if isinstance(e, InstanceProvisioned | ProvisioningFailed)
        and e.operation_id == operation_id
    ]
    assert isinstance(outcome, InstanceProvisioned), outcome
    fresh = fleet.sshd.container("acme-blue-odoo-1")
    assert fresh is not None
    assert fresh["Id"] != sick["Id"]
    assert fresh["State"]["Health"]["Status"] == "healthy"


async def test_a_server_that_stays_unreachable_fails_the_provisioning_after_bounded_retries(
    fleet: Fleet,
) -> None:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    fleet.sshd.stop()

    instance = await fleet.create_instance(server_id)
    failed = await fleet.wait_for(instance.stream, ProvisioningFailed, InstanceProvisioned)

    assert isinstance(failed, ProvisioningFailed), failed
    assert failed.step == "preflight"
    assert "gave up after repeated failures" in failed.message
    assert "connection refused" in failed.message
    operation = await fleet.operation(instance.operation_id)
    attempts = [e.attempt for e in operation if isinstance(e, OperationStepStarted)]
    assert attempts == [1, 1, 2, 3, 4, 5]  # the server check once, preflight five times
    assert isinstance(operation[-1], OperationFailed)
