"""The MCP credentials saga on the stand-in sshd tier (issue 18): after the first provisioning
an Odoo API key is issued through `odoo shell` in the running colour, sealed on the instance's
stream; a rotation issues a new one; the instance's deletion shreds it. The stand-in's
`odoo shell` reads its script and prints nothing, so the runner here adds the key line real
Odoo prints (workers/odoo/api_user.py's script, tested against Odoo on the real-Docker tier)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from builders import meta
from saga_fixtures import (  # noqa: F401
    ORG,
    Fleet,
    bare_fleet_fixture,
)
from waiting import eventually

from commands.instance import decide
from commands.instance_state import Running, fold
from commands.mcp_credentials import RotateMcpCredentials
from commands.runner import execute_command, load
from events.instance import (
    InstanceProvisioned,
    InstanceRemoved,
    McpCredentialsIssued,
    McpCredentialsRequested,
)
from events.operation import OperationStarted, OperationStepCompleted, OperationSucceeded
from events.secrets import MASK, Vault
from events.server import ServerValidated, server_stream
from workers.odoo.api_user import MARKER, parse_api_user_output
from workers.ssh.runner import CommandResult, ServerConnectionInfo, SshRunner


class OdooShellPrintsKeys(SshRunner):
    """The stand-in's `odoo shell` with the answer of Odoo's to the API user script: a fresh
    key on the marked line, after whatever else the command printed."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    async def run(
        self,
        server: ServerConnectionInfo,
        command: str,
        *,
        time_limit: float | None = None,
        output_limit: int | None = None,
        **options: Any,
    ) -> CommandResult:
        result = await super().run(
            server, command, time_limit=time_limit, output_limit=output_limit, **options
        )
        if "mcp_api_user.py" not in command or not result.ok:
            return result
        if MARKER in result.stdout:  # a stand-in that answers as Odoo does already
            self.keys.append(parse_api_user_output(result.stdout).key)
            return result
        self.keys.append(secrets.token_hex(20))
        line = MARKER + json.dumps({"uid": 7, "key": self.keys[-1]})
        return CommandResult(result.exit_status, f"{result.stdout}{line}\n", result.stderr, 0)


async def issued(fleet: Fleet, stream_id: str, count: int) -> list[McpCredentialsIssued]:
    found: list[McpCredentialsIssued] = []

    async def there() -> bool:
        events = await fleet.events(stream_id)
        found[:] = [e for e in events if isinstance(e, McpCredentialsIssued)]
        return len(found) >= count

    await eventually(there, timeout=60, interval=0.05, message=f"{count} McpCredentialsIssued")
    await fleet.wait_ended(found[-1].operation_id, timeout=30)
    return found


async def test_provisioning_issues_mcp_credentials_a_rotation_renews_them_deletion_shreds_them(
    bare_fleet: Fleet,
) -> None:
    fleet, runner = bare_fleet, OdooShellPrintsKeys()
    fleet.start_workers(runner=runner)
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)

    [first] = await issued(fleet, instance.stream, 1)
    requests = [
        e for e in await fleet.events(instance.stream) if isinstance(e, McpCredentialsRequested)
    ]
    operation = await fleet.operation(first.operation_id)
    started = operation[0]
    assert isinstance(started, OperationStarted)
    assert started.type == "mcp-credentials"
    assert [e.step for e in operation if isinstance(e, OperationStepCompleted)] == ["issue-key"]
    assert isinstance(operation[-1], OperationSucceeded)
    assert [r.operation_id for r in requests] == [first.operation_id]
    assert first.login == "odoofleet-mcp"
    assert await fleet.vault.open(instance.stream, first.api_key) == runner.keys[0]
    assert runner.keys[0] not in json.dumps([str(e) for e in operation])
    shells = [a for a in fleet.sshd.docker_argvs() if "exec" in a and "acme-blue-odoo-1" in a]
    assert any("shell" in a for a in shells)

    rotation = await execute_command(
        fleet.store, instance.stream, fold, decide,
        RotateMcpCredentials(operation_id="0e1f9d6c-5f7c-4b5e-8d5f-2f1e0c9b8a71"),
        datetime.now(UTC), meta(ORG),
    )  # fmt: skip
    assert rotation.position is not None
    [_, second] = await issued(fleet, instance.stream, 2)
    state = (await load(fleet.store, instance.stream, fold)).state
    assert isinstance(state, Running)
    assert state.facts.mcp_credentials is not None
    in_force = state.facts.mcp_credentials.api_key
    assert await fleet.vault.open(instance.stream, in_force) == runner.keys[1] != runner.keys[0]

    await fleet.remove(instance)
    await fleet.wait_for(instance.stream, InstanceRemoved, timeout=60)
    # A vault of its own: the fleet's keeps opened keys a few seconds (events/secrets.py).
    after = Vault(fleet.pool, fleet.settings.secret_key)
    assert await after.open(instance.stream, second.api_key) == MASK
