"""A server's publicIpv4/publicIpv6 (issue 16: where custom domains must point) through the
API: given at registration (checked, canonical) and kept, else the validation's detection."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from api_fixtures import Caller, new_server, record, server_body

from events.server import ServerValidated, server_stream
from events.store import EventStore


def _validated(server_id: str, ipv4: str | None, ipv6: str | None) -> ServerValidated:
    return ServerValidated(
        server_id=server_id,
        operation_id=str(uuid.uuid4()),
        os_name="Debian GNU/Linux",
        os_version="12",
        cpu_cores=2,
        ram_total_bytes=2**31,
        disk_free_bytes=2**34,
        docker_version="27.0.0",
        compose_version="2.29.0",
        validated_at=datetime.now(UTC),
        public_ipv4=ipv4,
        public_ipv6=ipv6,
    )


async def test_given_public_addresses_are_stored_canonical_and_shown(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice, publicIpv4="203.0.113.7", publicIpv6="2001:DB8:0::7")

    registered = json.loads((await store.read_stream(server_stream(server_id)))[0].data)
    shown = (await alice.get(f"/api/servers/{server_id}")).json()
    listed = (await alice.get("/api/servers")).json()["servers"]

    assert (registered["public_ipv4"], registered["public_ipv6"]) == ("203.0.113.7", "2001:db8::7")
    assert (shown["publicIpv4"], shown["publicIpv6"]) == ("203.0.113.7", "2001:db8::7")
    assert [(s["publicIpv4"], s["publicIpv6"]) for s in listed] == [("203.0.113.7", "2001:db8::7")]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("publicIpv4", "2001:db8::7"),
        ("publicIpv4", "203.0.113.999"),
        ("publicIpv4", "example.com"),
        ("publicIpv6", "203.0.113.7"),
        ("publicIpv6", "2001:db8::zz"),
    ],
)
async def test_a_public_address_of_the_wrong_family_or_no_address_is_400_naming_it(
    alice: Caller, field: str, value: str
) -> None:
    response = await alice.post("/api/servers", json=server_body(**{field: value}))

    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_without_given_addresses_the_validation_s_detection_is_shown(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    assert (await alice.get(f"/api/servers/{server_id}")).json()["publicIpv4"] is None

    position = await record(
        store, server_stream(server_id), _validated(server_id, "198.51.100.4", "2001:db8::4")
    )
    shown = (
        await alice.get(f"/api/servers/{server_id}", headers={"X-Min-Position": position})
    ).json()

    assert (shown["status"], shown["publicIpv4"], shown["publicIpv6"]) == (
        "active",
        "198.51.100.4",
        "2001:db8::4",
    )


async def test_given_addresses_override_what_the_validation_detects(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice, publicIpv4="203.0.113.7")

    position = await record(
        store, server_stream(server_id), _validated(server_id, "10.0.0.5", "2001:db8::4")
    )
    shown = (
        await alice.get(f"/api/servers/{server_id}", headers={"X-Min-Position": position})
    ).json()

    assert (shown["status"], shown["publicIpv4"], shown["publicIpv6"]) == (
        "active",
        "203.0.113.7",
        None,
    )
