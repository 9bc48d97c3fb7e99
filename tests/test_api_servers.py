"""Server endpoints through HTTP: the success paths and each documented error."""

from __future__ import annotations

import json
import uuid

import msgspec
import psycopg
from api_fixtures import (
    SSH_KEY,
    Caller,
    new_instance,
    new_server,
    record,
    server_body,
    stream_types,
)
from waiting import eventually

from events.registry import DomainEvent
from events.server import ServerDeleted, ServerRegistered, ServerValidationFailed, server_stream
from events.store import EventStore

SERVER_FIELDS = {
    "id", "name", "host", "port", "sshUser", "authMethod", "status", "statusMessage",
    "hostKeyFingerprint", "osName", "osVersion", "cpuCores", "ramTotalBytes", "dockerVersion",
    "maxSshSessions", "publicHostPorts", "publicIpv4", "publicIpv6", "lastSeenAt", "createdAt",
    "updatedAt",
}  # fmt: skip
HOST_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx6b0wqdQ1xJ0kq3M8H7YVdV1Tk2cQzZP1YbNnN7oF3 root@web"
)


async def test_registering_a_server_answers_201_pending_without_secrets(alice: Caller) -> None:
    response = await alice.post("/api/servers", json=server_body(hostKey=HOST_KEY))

    assert response.status_code == 201
    body = response.json()
    assert set(body) == SERVER_FIELDS
    assert (body["status"], body["port"], body["maxSshSessions"]) == ("pending", 22, 4)
    assert body["publicHostPorts"] is False
    assert response.headers["location"] == f"/api/servers/{body['id']}"
    assert SSH_KEY not in response.text
    assert "x-position" in response.headers


async def test_registering_requests_a_validation_and_seals_the_key(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)

    events = await store.read_stream(server_stream(server_id))

    assert [e.event_type for e in events] == ["ServerRegistered", "ServerValidationRequested"]
    assert SSH_KEY not in events[0].data
    assert set(json.loads(events[0].data)["ssh_private_key"]) == {"sealed"}


async def test_a_password_server_keeps_its_password_sealed(
    alice: Caller, store: EventStore
) -> None:
    body = server_body(authMethod="password", sshPassword="hunter2-long")
    del body["sshPrivateKey"]

    response = await alice.post("/api/servers", json=body)

    assert response.status_code == 201
    assert "hunter2-long" not in response.text
    events = await store.read_stream(server_stream(response.json()["id"]))
    assert "hunter2-long" not in events[0].data


async def test_the_secret_must_match_the_auth_method(alice: Caller) -> None:
    key_without_key = server_body()
    del key_without_key["sshPrivateKey"]
    both = server_body(sshPassword="pw")

    for body, field in ((key_without_key, "sshPrivateKey"), (both, "sshPrivateKey")):
        response = await alice.post("/api/servers", json=body)
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == field


async def test_a_bad_host_is_400(alice: Caller) -> None:
    for host in ("10.0.0.999", "bad host", "-x.example", "a" * 300):
        response = await alice.post("/api/servers", json=server_body(host=host))
        assert response.status_code == 400, host
        assert response.json()["errors"][0]["field"] == "host"


async def test_a_host_key_that_is_not_a_public_key_line_is_400(alice: Caller) -> None:
    response = await alice.post("/api/servers", json=server_body(hostKey="* ssh-ed25519 AAAA"))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "hostKey"


async def test_servers_are_listed_and_read(alice: Caller) -> None:
    first, second = await new_server(alice, name="one"), await new_server(alice, name="two")

    listed = await alice.get("/api/servers")
    one = await alice.get(f"/api/servers/{first}")

    assert [s["id"] for s in listed.json()["servers"]] == [first, second]
    assert (one.status_code, one.json()["name"]) == (200, "one")


async def test_an_unknown_server_is_404(alice: Caller) -> None:
    response = await alice.get("/api/servers/5f0c3b54-8d1b-4c7e-9a37-1f3d2a4b5c6d")

    assert response.status_code == 404


async def test_validate_requests_another_validation(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)

    response = await alice.post(f"/api/servers/{server_id}/validate")

    assert response.status_code == 202
    assert response.content == b""
    assert (await stream_types(store, server_stream(server_id)))[-1] == (
        "ServerValidationRequested"
    )
    assert len(await store.read_stream(server_stream(server_id))) == 3


async def test_a_server_without_instances_is_deleted(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)

    response = await alice.delete(f"/api/servers/{server_id}")

    assert response.status_code == 202
    assert (await stream_types(store, server_stream(server_id)))[-1] == "ServerDeleted"
    assert (await alice.get(f"/api/servers/{server_id}")).status_code == 404
    assert (await alice.delete(f"/api/servers/{server_id}")).status_code == 404
    assert (await alice.post(f"/api/servers/{server_id}/validate")).status_code == 404


async def test_a_server_with_a_live_instance_cannot_be_deleted(alice: Caller) -> None:
    server_id = await new_server(alice)
    await new_instance(alice, server_id)

    response = await alice.delete(f"/api/servers/{server_id}")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:odoofleet:problem:server-has-instances"


async def test_an_instance_hidden_by_an_older_open_transaction_still_keeps_its_server(
    alice: Caller, database_url: str
) -> None:
    """The count waits for every committed event, also one that an older transaction still
    open (anyone's, in any database) hides from the projections for now."""
    server_id = await new_server(alice)
    async with await psycopg.AsyncConnection.connect(database_url) as older:
        await older.execute("SELECT pg_current_xact_id()")
        await new_instance(alice, server_id)
        while_hidden = await alice.delete(f"/api/servers/{server_id}")
        await older.commit()
    after = await alice.delete(f"/api/servers/{server_id}")

    assert while_hidden.status_code == 503  # the projections cannot catch up meanwhile
    assert after.status_code == 409


async def test_an_instance_cannot_be_placed_on_a_server_in_error_or_deleted(
    alice: Caller, store: EventStore
) -> None:
    broken, gone = await new_server(alice), await new_server(alice)
    failure = ServerValidationFailed(
        server_id=broken, operation_id="op", status="error", message="no docker"
    )
    await record(store, server_stream(broken), failure)
    await record(store, server_stream(gone), ServerDeleted(server_id=gone))

    for server_id in (broken, gone):
        response = await alice.post("/api/instances", json={"name": "x", "serverId": server_id})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "serverId"


async def test_public_host_ports_is_stored_at_registration_and_shown(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice, publicHostPorts=True)
    other_id = await new_server(alice, name="web-2")

    registered = (await store.read_stream(server_stream(server_id)))[0]
    shown = (await alice.get(f"/api/servers/{server_id}")).json()
    listed = (await alice.get("/api/servers")).json()["servers"]

    assert json.loads(registered.data)["public_host_ports"] is True
    assert shown["publicHostPorts"] is True
    assert {s["id"]: s["publicHostPorts"] for s in listed} == {server_id: True, other_id: False}


async def test_public_host_ports_must_be_a_boolean(alice: Caller) -> None:
    response = await alice.post("/api/servers", json=server_body(publicHostPorts="yes"))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "publicHostPorts"


async def test_a_server_registered_before_public_host_ports_reads_as_private(
    alice: Caller, store: EventStore
) -> None:
    template = json.loads((await store.read_stream(server_stream(await new_server(alice))))[0].data)
    server_id = str(uuid.uuid4())
    del template["public_host_ports"]
    old_type = msgspec.defstruct(
        "ServerRegistered",
        [
            (f.name, f.type) if f.required else (f.name, f.type, f.default)
            for f in msgspec.structs.fields(ServerRegistered)
            if f.name != "public_host_ports"
        ],
        bases=(DomainEvent,),
        frozen=True,
        kw_only=True,
    )
    old = msgspec.convert(template | {"server_id": server_id}, old_type)
    assert old.schema_version == 1  # type: ignore[attr-defined]
    await record(store, server_stream(server_id), old)  # type: ignore[arg-type]

    async def shown() -> bool:
        return (await alice.get(f"/api/servers/{server_id}")).status_code == 200

    await eventually(shown, message="the old server is projected")
    body = (await alice.get(f"/api/servers/{server_id}")).json()

    assert body["publicHostPorts"] is False
    assert (await store.read_stream(server_stream(server_id)))[0].schema_version == 1
