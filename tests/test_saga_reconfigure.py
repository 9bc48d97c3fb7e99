"""A PATCH of envVars or addonsPath reaches the server: a running instance is redeployed to
its idle colour on freshly rendered files, a stopped one starts on them, and a change that
lands while an operation is in flight is not lost. Driven through the API, carried out by
the sagas on the test's sshd and stand-in docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_asyncio
from api_fixtures import Caller
from saga_fixtures import (  # noqa: F401
    Fleet,
    Instance,
    bare_fleet_fixture,
    fleet_fixture,
    read_text,
    steps_of,
)
from waiting import eventually

from events.instance import (
    ActionFailed,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceStarted,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    RedeployRequested,
)
from events.operation import OperationCancelled, OperationStepCompleted
from events.server import ServerValidated, server_stream

ADDONS = "/mnt/extra-addons,/mnt/custom-addons"


@pytest_asyncio.fixture
async def running(fleet: Fleet) -> Instance:
    instance = await fleet.create_instance(
        await fleet.register_server(), env_vars={"GREETING": "hello"}
    )
    provisioned = await fleet.wait_for(instance.stream, InstanceProvisioned, ProvisioningFailed)
    assert isinstance(provisioned, InstanceProvisioned), provisioned
    return instance


async def patch(alice: Caller, instance: Instance, body: dict[str, Any]) -> None:
    answer = await alice.patch(f"/api/instances/{instance.id}", json=body)
    assert answer.status_code == 200, answer.text


async def control(alice: Caller, instance: Instance, action: str) -> None:
    answer = await alice.post(f"/api/instances/{instance.id}/control", json={"action": action})
    assert answer.status_code == 202, answer.text


async def redeploys_asked(fleet: Fleet, instance: Instance) -> list[RedeployRequested]:
    return [e for e in await fleet.events(instance.stream) if isinstance(e, RedeployRequested)]


async def redeployed(fleet: Fleet, instance: Instance, operation_id: str) -> InstanceRedeployed:
    """The redeploy's outcome, once the operation has ended (outcome first, then the end)."""
    await fleet.wait_ended(operation_id)
    events = await fleet.events(instance.stream)
    done = [e for e in events if isinstance(e, InstanceRedeployed | ActionFailed)]
    mine = [e for e in done if e.operation_id == operation_id]
    ended = (await fleet.operation(operation_id))[-1]
    assert mine, f"no outcome: the operation ended with {ended}"
    assert isinstance(mine[0], InstanceRedeployed), mine[0]
    return mine[0]


def app_file(fleet: Fleet, instance: Instance, name: str) -> str:
    return read_text(f"{fleet.root}/{instance.slug}/{name}")


def modified(fleet: Fleet, instance: Instance) -> dict[str, int]:
    """When each file a colour reads was last written."""
    files = ("app/instance.env", "odoo.conf", "app/compose.yaml")
    return {name: Path(f"{fleet.root}/{instance.slug}/{name}").stat().st_mtime_ns for name in files}


def container(fleet: Fleet, name: str) -> dict[str, Any]:
    found = fleet.sshd.container(name)
    assert found is not None, f"no container {name}"
    return found


def env_of(fleet: Fleet, name: str) -> dict[str, str]:
    """The container's environment as Compose resolved it from the env file."""
    pairs = (line.split("=", 1) for line in container(fleet, name)["Config"]["Env"])
    return dict(pairs)


def digest_of(fleet: Fleet, name: str) -> str:
    return str(container(fleet, name)["Config"]["Labels"]["odoofleet.config-digest"])


def status(fleet: Fleet, name: str) -> str:
    return str(container(fleet, name)["State"]["Status"])


async def shows(alice: Caller, instance: Instance, status: str, color: str) -> None:
    """GET /instances/{id} shows this status and activeColor, once the projection has caught
    up with the saga's outcome (read-your-writes covers the caller's own writes only)."""

    async def there() -> bool:
        shown = (await alice.get(f"/api/instances/{instance.id}")).json()
        return (shown["status"], shown["activeColor"]) == (status, color)

    await eventually(there, timeout=10, interval=0.05, message=f"shown as {status}, {color}")


async def operation_shown(alice: Caller, instance: Instance, operation_id: str) -> dict[str, Any]:
    """The operation as GET /operations shows it, once the projection has it finished."""
    found: list[dict[str, Any]] = []

    async def finished() -> bool:
        answer = await alice.get(f"/api/instances/{instance.id}/operations")
        found[:] = [op for op in answer.json()["operations"] if op["id"] == operation_id]
        return bool(found) and found[0]["status"] != "running"

    await eventually(finished, timeout=10, interval=0.05, message=f"{operation_id} shown")
    return found[0]


async def test_new_env_vars_on_a_running_instance_are_deployed_to_the_idle_colour(
    fleet: Fleet, running: Instance, alice: Caller
) -> None:
    blue_digest = digest_of(fleet, "acme-blue-odoo-1")

    await patch(alice, running, {"envVars": {"GREETING": "bonjour"}})

    [asked] = await redeploys_asked(fleet, running)
    done = await redeployed(fleet, running, asked.operation_id)
    assert done.active_color == "green"
    assert app_file(fleet, running, "app/instance.env") == 'GREETING="bonjour"\n'
    assert env_of(fleet, "acme-green-odoo-1")["GREETING"] == "bonjour"
    assert digest_of(fleet, "acme-green-odoo-1") != blue_digest
    assert (status(fleet, "acme-green-odoo-1"), status(fleet, "acme-blue-odoo-1")) == (
        "running",
        "exited",
    )
    assert "acme-green-odoo-1" in read_text(f"{fleet.root}/_proxy/routes/acme.conf")
    operation = await operation_shown(alice, running, asked.operation_id)
    assert (operation["type"], operation["status"]) == ("redeploy", "succeeded")
    assert [step["name"] for step in operation["steps"]] == [
        "app-up-green",
        "readiness-green",
        "route-green",
        "stop-blue",
    ]
    await shows(alice, running, "running", "green")


async def test_a_new_addons_path_is_deployed_in_odoo_conf(
    fleet: Fleet, running: Instance, alice: Caller
) -> None:
    await patch(alice, running, {"addonsPath": ADDONS})

    [asked] = await redeploys_asked(fleet, running)
    done = await redeployed(fleet, running, asked.operation_id)
    assert done.active_color == "green"
    assert f"\naddons_path = {ADDONS}\n" in app_file(fleet, running, "odoo.conf")
    # odoo.conf is bind-mounted: its digest in the compose file is what tells Compose the
    # colour's configuration changed.
    assert digest_of(fleet, "acme-green-odoo-1") != digest_of(fleet, "acme-blue-odoo-1")
    assert digest_of(fleet, "acme-green-odoo-1") in app_file(fleet, running, "app/compose.yaml")
    assert status(fleet, "acme-blue-odoo-1") == "exited"
    await shows(alice, running, "running", "green")


async def test_a_new_name_changes_nothing_on_the_server(
    fleet: Fleet, running: Instance, alice: Caller
) -> None:
    before = modified(fleet, running)
    calls_before = len(fleet.sshd.docker_argvs())

    await patch(alice, running, {"name": "Renamed", "mcpWriteEnabled": True})
    # A stop afterwards: whatever the rename had asked of a saga would be on its way by now.
    await control(alice, running, "stop")
    await fleet.wait_for(running.stream, InstanceStopped)

    events = await fleet.events(running.stream)
    assert not any(isinstance(e, RedeployRequested) for e in events)
    assert [e.name for e in events if isinstance(e, InstanceUpdated)] == ["Renamed"]
    assert modified(fleet, running) == before
    calls = fleet.sshd.docker_argvs()[calls_before:]
    assert not [argv for argv in calls if "up" in argv]
    answer = await alice.get(f"/api/instances/{running.id}/operations")
    # (The MCP credentials operation follows the provisioning, not the rename.)
    types = sorted(op["type"] for op in answer.json()["operations"])
    assert [t for t in types if t != "mcp-credentials"] == ["provision", "stop"]


async def test_a_stopped_instance_gets_no_redeploy_and_starts_on_the_new_env_vars(
    fleet: Fleet, running: Instance, alice: Caller
) -> None:
    await control(alice, running, "stop")
    await fleet.wait_for(running.stream, InstanceStopped)
    stopped_digest = digest_of(fleet, "acme-blue-odoo-1")

    await patch(alice, running, {"envVars": {"GREETING": "hej"}})
    assert await redeploys_asked(fleet, running) == []
    assert app_file(fleet, running, "app/instance.env") == 'GREETING="hello"\n'
    await control(alice, running, "start")

    started = await fleet.wait_for(running.stream, InstanceStarted, ActionFailed)
    assert isinstance(started, InstanceStarted), started
    assert app_file(fleet, running, "app/instance.env") == 'GREETING="hej"\n'
    assert env_of(fleet, "acme-blue-odoo-1")["GREETING"] == "hej"
    assert digest_of(fleet, "acme-blue-odoo-1") != stopped_digest
    assert status(fleet, "acme-blue-odoo-1") == "running"
    assert steps_of(await fleet.operation(started.operation_id), OperationStepCompleted) == [
        "app-up",
        "readiness",
    ]
    assert await redeploys_asked(fleet, running) == []


async def test_two_quick_changes_both_reach_the_server(
    fleet: Fleet, running: Instance, alice: Caller
) -> None:
    fleet.sshd.arm("hold:compose-up")
    await patch(alice, running, {"envVars": {"GREETING": "bonjour"}})
    # The first redeploy has uploaded its files and is starting green when the second lands.
    await eventually(lambda: green_up_called(fleet), timeout=30, message="green app-up")
    await patch(alice, running, {"addonsPath": ADDONS})
    fleet.sshd.disarm("hold:compose-up")

    first, second = await redeploys_asked(fleet, running)
    assert (first.target_color, second.target_color) == ("green", "green")
    assert (await redeployed(fleet, running, first.operation_id)).active_color == "green"
    assert (await redeployed(fleet, running, second.operation_id)).active_color == "blue"
    assert app_file(fleet, running, "app/instance.env") == 'GREETING="bonjour"\n'
    assert f"\naddons_path = {ADDONS}\n" in app_file(fleet, running, "odoo.conf")
    assert env_of(fleet, "acme-blue-odoo-1")["GREETING"] == "bonjour"
    assert digest_of(fleet, "acme-blue-odoo-1") in app_file(fleet, running, "app/compose.yaml")
    assert (status(fleet, "acme-blue-odoo-1"), status(fleet, "acme-green-odoo-1")) == (
        "running",
        "exited",
    )
    await shows(alice, running, "running", "blue")


def green_up_called(fleet: Fleet) -> bool:
    return any("acme-green" in argv and "up" in argv for argv in fleet.sshd.docker_argvs())


async def test_a_change_made_while_creating_is_deployed_after_the_provisioning(
    fleet: Fleet, alice: Caller
) -> None:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    fleet.sshd.arm("hold:compose-up")
    instance = await fleet.create_instance(server_id, env_vars={"GREETING": "hello"})
    # The provisioning read the settings and laid out the files before this change.
    await fleet.wait_step_started(instance.operation_id, "db-up")

    await patch(alice, instance, {"envVars": {"GREETING": "hallo"}})
    fleet.sshd.disarm("hold:compose-up")

    provisioned = await fleet.wait_for(instance.stream, InstanceProvisioned, ProvisioningFailed)
    assert isinstance(provisioned, InstanceProvisioned), provisioned
    [asked] = await redeploys_asked(fleet, instance)
    assert (await redeployed(fleet, instance, asked.operation_id)).active_color == "green"
    assert env_of(fleet, "acme-blue-odoo-1")["GREETING"] == "hello"
    assert env_of(fleet, "acme-green-odoo-1")["GREETING"] == "hallo"
    assert status(fleet, "acme-green-odoo-1") == "running"


async def test_starting_a_failed_instance_applies_a_change_made_since(
    fleet: Fleet, alice: Caller
) -> None:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    fleet.sshd.arm("login-page")
    instance = await fleet.create_instance(server_id, env_vars={"GREETING": "hello"})
    await fleet.wait_for(instance.stream, ProvisioningFailed)

    await patch(alice, instance, {"envVars": {"GREETING": "ciao"}})
    assert await redeploys_asked(fleet, instance) == []
    fleet.sshd.disarm("login-page")
    await control(alice, instance, "start")

    provisioned = await fleet.wait_for(instance.stream, InstanceProvisioned)
    operation = await fleet.operation(provisioned.operation_id)  # type: ignore[attr-defined]
    # The resumed provisioning starts blue again, on the new files; the rest is not redone.
    assert steps_of(operation, OperationStepCompleted) == [
        "server",
        "preflight",
        "db-healthy",
        "app-up",
        "readiness",
        "route",
    ]
    assert app_file(fleet, instance, "app/instance.env") == 'GREETING="ciao"\n'
    assert env_of(fleet, "acme-blue-odoo-1")["GREETING"] == "ciao"


async def test_a_redeploy_that_finds_the_instance_stopped_starts_nothing(
    fleet: Fleet, running: Instance, alice: Caller
) -> None:
    # A stop asked for after a change won the race to the instance: its next start applies
    # the change, the redeploy must not bring it back up.
    await control(alice, running, "stop")
    await fleet.wait_for(running.stream, InstanceStopped)

    operation_id = await fleet.redeploy(running, "green")
    await fleet.wait_ended(operation_id)

    ended = (await fleet.operation(operation_id))[-1]
    assert isinstance(ended, OperationCancelled), ended
    assert "stopped" in ended.reason
    assert fleet.sshd.container("acme-green-odoo-1") is None
    assert status(fleet, "acme-blue-odoo-1") == "exited"
    await shows(alice, running, "stopped", "blue")
