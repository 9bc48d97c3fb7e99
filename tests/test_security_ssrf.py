"""Servers are no proxy into the control plane's network (issue 13, item 4): a server's host
may not be, or resolve to, a loopback, link-local, cloud-metadata or control-plane address
unless ODOOFLEET_SERVER_ALLOWED_NETWORKS lists it; that is checked at registration (400
naming `host`) and again at every connection, which dials the address that was checked; a
refusal says the same whatever the target; `/validate` is rate-limited per organization."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from api_fixtures import client_of, mint, server_body, serving
from builders import meta
from saga_fixtures import Fleet
from sshd_harness import SshdServer

from api.app import create_app
from events.pool import Pool
from events.server import (
    ServerRegistered,
    ServerValidated,
    ServerValidationFailed,
    ServerValidationRequested,
    server_stream,
)
from events.store import NO_STREAM
from odoofleet.settings import Settings, SettingsError, load_settings
from workers.ssh import network_policy
from workers.ssh.errors import AddressRefused
from workers.ssh.network_policy import LOOPBACK_NETWORKS, NetworkPolicy, parse_networks
from workers.ssh.runner import SshRunner

INTERNAL_HOSTS = [
    "127.0.0.1",
    "127.8.9.10",
    "0x7f.0.0.1",
    "localhost",
    "0.0.0.0",
    "169.254.169.254",
    "metadata.google.internal",
    "METADATA.Google.Internal",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "fd00:ec2::254",
    "fe80::1",
]
INTERNAL_PORTS = [1, 22, 4222, 5432, 8795]


def strict(settings: Settings, **changes: Any) -> Settings:
    """The test's settings as a production installation has them: nothing allowed on top."""
    return msgspec.structs.replace(settings, **({"server_allowed_networks": ""} | changes))


@pytest_asyncio.fixture(name="client")
async def strict_client_fixture(settings: Settings, pool: Pool) -> AsyncIterator[Any]:
    strict_settings = strict(settings, server_validations_per_minute=3)
    async with serving(create_app(strict_settings.for_api(), pool=pool)) as app:
        token = mint(strict_settings, org="org-a", sub="alice")
        async with client_of(app, token) as client:
            yield client


@pytest.fixture(name="listener")
def listener_fixture() -> Iterator[socket.socket]:
    """A port on 127.0.0.1 that records whether anything connected to it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.3)
        yield listener


def _nobody_connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except TimeoutError:
        return True
    return False


# ---- the policy ------------------------------------------------------------------------------


def test_loopback_link_local_and_metadata_addresses_are_refused_in_both_families() -> None:
    policy = NetworkPolicy()
    refused = ["127.0.0.1", "0.0.0.0", "169.254.169.254", "::1", "fe80::1", "fd00:ec2::254"]
    refused += ["::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "100.100.100.200"]
    refused += ["224.0.0.1", "255.255.255.255", "ff02::1", "::"]
    for address in refused:
        assert not policy.permits(ipaddress.ip_address(address)), address


def test_private_and_public_addresses_are_allowed_by_default() -> None:
    policy = NetworkPolicy()
    for address in ["10.0.0.5", "192.168.1.20", "172.16.3.4", "fd12::5", "203.0.113.7"]:
        assert policy.permits(ipaddress.ip_address(address)), address


def test_the_control_planes_own_addresses_are_refused() -> None:
    own = ipaddress.ip_address("10.1.2.3")
    policy = NetworkPolicy(own_addresses=[own])
    assert not policy.permits(own)
    assert policy.permits(ipaddress.ip_address("10.1.2.4"))


def test_the_database_and_nats_hosts_count_as_the_control_planes_own(settings: Settings) -> None:
    changed = msgspec.structs.replace(
        settings,
        server_allowed_networks="",
        database_url="postgresql://postgres@10.9.8.7:5432/odoofleet",
        nats_url="nats://10.9.8.6:4222",
    )
    policy = changed.server_addresses()
    assert not policy.permits(ipaddress.ip_address("10.9.8.7"))
    assert not policy.permits(ipaddress.ip_address("10.9.8.6"))
    assert policy.permits(ipaddress.ip_address("10.9.8.5"))


def test_denied_networks_are_refused_and_allowed_networks_win() -> None:
    policy = NetworkPolicy(
        allowed=parse_networks("127.0.0.0/8, 10.1.0.0/16"),
        denied=parse_networks("10.0.0.0/8"),
    )
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("10.1.2.3"))
    assert not policy.permits(ipaddress.ip_address("10.2.0.1"))
    assert not policy.permits(ipaddress.ip_address("::1"))


def test_a_network_setting_that_is_no_cidr_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="ODOOFLEET_SERVER_DENIED_NETWORKS"):
        load_settings({"ODOOFLEET_SERVER_DENIED_NETWORKS": "10.0.0.0/8,intranet"})


# ---- registration ----------------------------------------------------------------------------


async def test_registering_an_internal_address_is_refused_naming_host_with_one_message(
    client: Any,
) -> None:
    details = set()
    for host in INTERNAL_HOSTS:
        for port in INTERNAL_PORTS:
            response = await client.post("/api/servers", json=server_body(host=host, port=port))
            assert response.status_code == 400, (host, port, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            [error] = response.json()["errors"]
            assert error["field"] == "host"
            details.add(error["message"].replace(host, "<host>"))
    assert details == {"<host> is not an address odoofleet may connect to"}


async def test_private_addresses_and_unresolved_names_register(client: Any) -> None:
    for host in ["10.0.0.5", "192.168.1.20", "fd12::5", "not-yet-in-dns.example"]:
        response = await client.post("/api/servers", json=server_body(host=host))
        assert response.status_code == 201, (host, response.text)


async def test_a_denied_private_network_is_refused_at_registration(
    settings: Settings, pool: Pool
) -> None:
    denying = strict(settings, server_denied_networks="10.0.0.0/8")
    async with (
        serving(create_app(denying.for_api(), pool=pool)) as app,
        client_of(app, mint(denying)) as client,
    ):
        refused = await client.post("/api/servers", json=server_body(host="10.0.0.5"))
        allowed = await client.post("/api/servers", json=server_body(host="192.168.1.2"))
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "host"
    assert allowed.status_code == 201


# ---- every connection ------------------------------------------------------------------------


async def test_a_connection_to_an_internal_address_is_refused_before_dialling(
    settings: Settings, sshd: SshdServer, listener: socket.socket
) -> None:
    runner = SshRunner(policy=strict(settings).server_addresses())
    messages = set()
    try:
        for port in [listener.getsockname()[1], sshd.port]:
            for host in ["127.0.0.1", "localhost", "::ffff:127.0.0.1", "metadata.google.internal"]:
                info = sshd.connection_info(host=host, port=port)
                with pytest.raises(AddressRefused) as refused:
                    await runner.connect(info)
                shown = str(refused.value).replace(host, "<host>").replace(str(port), "<port>")
                messages.add(shown)
    finally:
        await runner.close()
    assert _nobody_connected(listener)
    generic = "cannot connect to <host>:<port>: <host> is not an address odoofleet may connect to"
    assert messages == {generic}


async def test_each_connection_dials_the_address_it_checked_so_dns_rebinding_gains_nothing(
    settings: Settings, sshd: SshdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolved to an allowed address at registration and to the metadata
    service now: the connection checks what it resolves now, and dials only that."""
    answers: list[str] = []

    async def rebinding_dns(host: str, port: int) -> list[Any]:
        assert host == "rebinding.example"
        return [ipaddress.ip_address(answers.pop(0))]

    monkeypatch.setattr(network_policy, "_addresses", rebinding_dns)
    allowing = strict(settings, server_allowed_networks="127.0.0.1/32")
    runner = SshRunner(policy=allowing.server_addresses())
    info = sshd.connection_info(host="rebinding.example")
    try:
        answers.append("127.0.0.1")
        await runner.connect(info)  # the name is no real one: the checked address was dialled
        await runner.close()
        answers.append("169.254.169.254")
        with pytest.raises(AddressRefused):
            await runner.connect(info)
    finally:
        await runner.close()
    assert answers == []


async def test_a_validation_of_an_internal_server_fails_with_the_generic_message(
    bare_fleet: Fleet, listener: socket.socket
) -> None:
    fleet = bare_fleet
    fleet.settings = strict(fleet.settings)
    fleet.start_workers()
    server_id = str(uuid.uuid4())
    stream = server_stream(server_id)
    registered = ServerRegistered(
        server_id=server_id,
        name="sneaky",
        host="127.0.0.1",
        port=listener.getsockname()[1],
        ssh_user="root",
        auth_method="password",
        ssh_private_key=None,
        ssh_password=await fleet.vault.seal(stream, "guess-1"),
        host_key=None,
        max_ssh_sessions=4,
        created_at=datetime.now(UTC),
    )
    requested = ServerValidationRequested(server_id=server_id, operation_id=str(uuid.uuid4()))
    await fleet.store.append(stream, NO_STREAM, [registered, requested], meta("org-a"))

    outcome = await fleet.wait_for(stream, ServerValidated, ServerValidationFailed)

    assert isinstance(outcome, ServerValidationFailed)
    assert outcome.status == "error"
    assert outcome.message.endswith("127.0.0.1 is not an address odoofleet may connect to")
    assert _nobody_connected(listener)


# ---- /validate -------------------------------------------------------------------------------


async def test_validate_is_rate_limited_per_organization(
    client: Any, settings: Settings, pool: Pool
) -> None:
    response = await client.post("/api/servers", json=server_body())
    server_id = response.json()["id"]
    accepted = [await client.post(f"/api/servers/{server_id}/validate") for _ in range(3)]
    limited = await client.post(f"/api/servers/{server_id}/validate")

    assert [r.status_code for r in accepted] == [202, 202, 202]
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 20
    assert "at most 3 server validations per minute" in limited.json()["detail"]


async def test_another_organizations_validations_are_not_limited_by_the_first(
    settings: Settings, pool: Pool
) -> None:
    limited = strict(settings, server_validations_per_minute=1)
    async with (
        serving(create_app(limited.for_api(), pool=pool)) as app,
        client_of(app, mint(limited, org="org-a")) as alice,
        client_of(app, mint(limited, org="org-b", sub="bob")) as bob,
    ):
        alices = (await alice.post("/api/servers", json=server_body())).json()["id"]
        bobs = (await bob.post("/api/servers", json=server_body())).json()["id"]
        first = await alice.post(f"/api/servers/{alices}/validate")
        second = await alice.post(f"/api/servers/{alices}/validate")
        others = await bob.post(f"/api/servers/{bobs}/validate")
    assert (first.status_code, second.status_code, others.status_code) == (202, 429, 202)


def test_loopback_networks_cover_both_families() -> None:
    networks = parse_networks(LOOPBACK_NETWORKS)
    assert ipaddress.ip_address("127.0.0.1") in networks[0]
    assert ipaddress.ip_address("::1") in networks[1]
