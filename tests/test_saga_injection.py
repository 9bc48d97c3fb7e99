"""No value a client chose can run a command on a server: what the server gets is either one
literal argument or file content, or the value is refused before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from saga_fixtures import Fleet, bare_fleet_fixture, fleet_fixture  # noqa: F401

from events.instance import InstanceProvisioned, ProvisioningFailed
from events.server import ServerValidated, server_stream


def hostile(pwned: Path) -> str:
    return (
        f"$(touch {pwned}-1)`touch {pwned}-2`; touch {pwned}-3 && touch {pwned}-4 | "
        f"touch {pwned}-5\n touch {pwned}-6 'quoted' \"double\" \\ * ? ~ # & > {pwned}-7 < "
        "${HOME} $$ %s"
    )


def leftovers(folder: Path) -> list[Path]:
    return list(folder.glob("pwned*"))


async def test_env_vars_and_branch_reach_the_container_literally_and_never_run(
    fleet: Fleet, tmp_path: Path
) -> None:
    value = hostile(tmp_path / "pwned")
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)

    instance = await fleet.create_instance(server_id, env_vars={"HOSTILE": value}, branch=value)
    provisioned = await fleet.wait_for(instance.stream, InstanceProvisioned, ProvisioningFailed)

    assert isinstance(provisioned, InstanceProvisioned), provisioned
    container = fleet.sshd.container("acme-blue-odoo-1")
    # As `compose config` resolved the env file: the value whole, with each `$` doubled
    # because its output is a compose file again (so `$$` is one literal `$`).
    assert f"HOSTILE={value.replace('$', '$$')}" in container["Config"]["Env"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("field", "refusal"),
    [("slug", "invalid slug"), ("addons_path", "invalid addons path entry")],
)
async def test_an_unsafe_slug_or_addons_path_is_refused_before_anything_is_sent(
    fleet: Fleet, tmp_path: Path, field: str, refusal: str
) -> None:
    value = hostile(tmp_path / "pwned")
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    calls = len(fleet.sshd.calls())

    instance = await fleet.create_instance(server_id, **{field: value})
    failed = await fleet.wait_for(instance.stream, ProvisioningFailed, InstanceProvisioned)

    assert isinstance(failed, ProvisioningFailed), failed
    assert failed.step == "preflight"
    assert refusal in failed.message
    assert len(fleet.sshd.calls()) == calls
    assert leftovers(tmp_path) == []
