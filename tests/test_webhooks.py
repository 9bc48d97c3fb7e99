"""Webhooks end to end (issue 17): API → log → relay → JetStream → fan-out → delivery lanes →
receivers on 127.0.0.1, on this test's own database and stream."""

from __future__ import annotations

import ipaddress
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest_asyncio
from api_fixtures import Caller, CallerFactory
from background import Background, relay
from builders import meta, server_registered
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from waiting import eventually
from webhook_fixtures import Answer, Hang, Received, Receiver, always, receivers, verifies

from events.pool import Pool
from events.server import ServerReachable, server_stream
from events.store import ANY, NO_STREAM, EventStore
from odoofleet.settings import Settings
from workers.ssh.network_policy import IpAddress, NetworkPolicy, parse_networks
from workers.webhooks.addresses import PRIVATE_NETWORKS, WebhookAddresses, url_problem
from workers.webhooks.delivery import DeliveryConfig
from workers.webhooks.run import run_webhooks
from workers.webhooks.schedule import RetrySchedule

TICK = timedelta(seconds=0.05)
QUICK = DeliveryConfig(
    timeout=1.0,
    lanes=4,
    poll_interval=0.05,
    lease_margin=0.5,
    schedule=RetrySchedule(first_delay=TICK, factor=1.0, max_delay=TICK),
)
EVENTS = ["server.reachable"]


@pytest_asyncio.fixture
async def settings(settings: Settings) -> Settings:
    """The receivers listen on loopback, which a real installation refuses."""
    return msgspec.structs.replace(settings, webhook_allowed_networks="127.0.0.0/8")


class World:
    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings, self.pool = settings, pool
        self.store = EventStore(pool)
        self._services = Background()

    def start_relay(self) -> None:
        self._services.start(relay(self.settings, self.pool))

    def start_webhooks(
        self,
        *,
        config: DeliveryConfig = QUICK,
        allowed: str | None = None,
        resolve: Callable[[str, int], Any] | None = None,
        clock: Callable[[], datetime] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        settings = self.settings
        if allowed is not None:
            settings = msgspec.structs.replace(settings, webhook_allowed_networks=allowed)
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        extra |= {"config": config, "resolve": resolve, "fanout_ack_wait": 0.3}
        extra |= {"ssl_context": ssl_context}
        self._services.start(
            lambda stop: run_webhooks(settings.for_workers(), self.pool, stop, **extra)
        )

    async def stop(self) -> None:
        await self._services.stop(timeout=15)

    async def server_events(self, count: int, org: str = "org-a") -> list[str]:
        """`count` server.reachable events, appended one by one; their ids in log order."""
        server_id = str(uuid.uuid4())
        registered = server_registered(
            server_id=server_id,
            host="192.0.2.1",
            ssh_private_key=None,
            created_at=datetime.now(UTC),
        )
        await self.store.append(server_stream(server_id), NO_STREAM, [registered], meta(org))
        ids = []
        for _ in range(count):
            event_id = uuid.uuid4()
            event = ServerReachable(server_id=server_id, observed_at=datetime.now(UTC))
            await self.store.append(server_stream(server_id), ANY, [event], meta(org), [event_id])
            ids.append(str(event_id))
        return ids


@pytest_asyncio.fixture(name="world")
async def world_fixture(settings: Settings, pool: Pool, app: Any) -> AsyncIterator[World]:
    world = World(settings, pool)
    world.start_relay()
    yield world
    await world.stop()


@pytest_asyncio.fixture
async def hooks(caller: CallerFactory) -> Caller:
    return await caller(org="org-a", sub="alice", permissions=("manage:webhooks",))


async def create(hooks: Caller, url: str, events: Collection[str] = EVENTS) -> dict[str, Any]:
    reply = await hooks.post("/api/webhooks", json={"url": url, "events": list(events)})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def deliveries(hooks: Caller, endpoint_id: str) -> list[dict[str, Any]]:
    reply = await hooks.get(f"/api/webhooks/{endpoint_id}/deliveries")
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["deliveries"]
    return found


def sent_test_event_id(receiver: Receiver) -> str:
    return next(r.id for r in receiver.received if r.json()["type"] == "webhook.test")


async def test_a_new_endpoint_gets_a_test_event_whose_signature_verifies_by_the_spec(
    world: World, hooks: Caller
) -> None:
    world.start_webhooks()
    async with receivers(always(Answer())) as (receiver,):
        created = await create(hooks, receiver.url)
        assert created["secret"].startswith("whsec_")
        await eventually(lambda: receiver.delivered_ids(), message="the test event")
        request = receiver.received[0]
        assert verifies(created["secret"], request)
        assert not verifies("whsec_" + "A" * 44, request)
        tampered = Received(request.headers, request.body + b" ", request.at)
        assert not verifies(created["secret"], tampered)
        event = request.json()
        assert event["type"] == "webhook.test"
        assert event["resourceId"] == created["id"]
        assert request.headers["webhook-id"] == event["id"]

        listed = (await hooks.get("/api/webhooks")).json()["webhooks"]
        assert [w["id"] for w in listed] == [created["id"]]
        assert "secret" not in listed[0]
        (delivery,) = await deliveries(hooks, created["id"])
        assert delivery["status"] == "delivered"
        assert delivery["eventId"] == event["id"]
        (attempt,) = delivery["attempts"]
        assert attempt["statusCode"] == 200
        assert attempt["outcome"] == "delivered"
        assert attempt["responseExcerpt"] == "ok"
        assert attempt["latencyMs"] >= 0


async def test_a_receiver_failing_three_times_gets_every_event_once_in_log_order(
    world: World, hooks: Caller
) -> None:
    world.start_webhooks()

    def flaky(n: int, _: Received) -> Answer:
        return Answer(500, b"down") if n < 3 else Answer()

    async with receivers(flaky) as (receiver,):
        created = await create(hooks, receiver.url)
        await eventually(lambda: len(receiver.received) >= 1, message="the test event tried")
        ids = await world.server_events(5)
        await eventually(lambda: len(receiver.delivered_ids()) == 6, message="six deliveries")
        assert receiver.delivered_ids() == [sent_test_event_id(receiver), *ids]
        assert [r.id for r in receiver.received[:4]] == [sent_test_event_id(receiver)] * 4
        assert [r.json()["type"] for r in receiver.received[4:]] == ["server.reachable"] * 5
        found = await deliveries(hooks, created["id"])
        test = next(d for d in found if d["eventType"] == "webhook.test")
        assert [a["statusCode"] for a in test["attempts"]] == [500, 500, 500, 200]
        assert test["attempts"][0]["responseExcerpt"] == "down"
        assert all(d["status"] == "delivered" for d in found)


async def test_a_hanging_receiver_times_out_and_is_retried_while_other_endpoints_are_served(
    world: World, hooks: Caller
) -> None:
    world.start_webhooks()

    def hangs_once(n: int, _: Received) -> Answer | Hang:
        return Hang() if n == 0 else Answer()

    async with receivers(hangs_once, always(Answer())) as (slow, quick):
        hanging = await create(hooks, slow.url)
        await create(hooks, quick.url)
        await eventually(lambda: len(slow.received) == 1, message="the hanging request")
        ids = await world.server_events(3)
        # Served while the other endpoint's call hangs (its timeout is 1 s).
        await eventually(lambda: quick.delivered_ids()[1:] == ids, timeout=0.9)
        assert slow.delivered_ids() == []
        await eventually(lambda: len(slow.delivered_ids()) == 4, message="retried after timeout")
        assert slow.delivered_ids()[1:] == ids
        assert slow.received[0].id == slow.received[1].id  # the same message, sent again
        found = await deliveries(hooks, hanging["id"])
        test = next(d for d in found if d["eventType"] == "webhook.test")
        assert [a["outcome"] for a in test["attempts"]] == ["timeout", "delivered"]
        assert test["attempts"][0]["latencyMs"] >= 900


async def test_webhooks_may_not_be_pointed_at_internal_addresses(hooks: Caller) -> None:
    refused = [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/",
        "https://10.0.0.1/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "http://example.com/hook",  # http only to the allowed networks
        "https://metadata.google.internal/",
        "ftp://example.com/",
        "https://user:pw@example.com/",
    ]
    for url in refused:
        reply = await hooks.post("/api/webhooks", json={"url": url, "events": EVENTS})
        assert reply.status_code == 400, url
        assert reply.json()["errors"][0]["field"] == "url"
    unknown = await hooks.post("/api/webhooks", json={"url": "https://a.test/", "events": ["x"]})
    assert unknown.status_code == 400


def test_loopback_is_refused_at_create_unless_an_allowed_network_names_it() -> None:
    bare = WebhookAddresses(NetworkPolicy(denied=PRIVATE_NETWORKS))
    allowing = WebhookAddresses(
        NetworkPolicy(allowed=parse_networks("127.0.0.0/8"), denied=PRIVATE_NETWORKS)
    )
    assert url_problem("http://127.0.0.1:8080/hook", bare) is not None
    assert url_problem("https://127.0.0.1/hook", bare) is not None
    assert url_problem("https://[::1]/hook", bare) is not None
    assert url_problem("http://127.0.0.1:8080/hook", allowing) is None
    assert url_problem("https://hooks.example.com/odoo", bare) is None


async def test_every_address_is_checked_when_dialled_and_refusals_are_recorded(
    world: World, hooks: Caller
) -> None:
    """What the API cannot see: names that resolve inward, an allowlist that no longer covers
    loopback, and a redirect to localhost; each refused at connect time, none followed."""
    dialled: list[str] = []

    async def resolve(host: str, port: int) -> list[IpAddress]:
        dialled.append(host)
        answers = {"inside.test": "10.0.0.1", "metadata.test": "169.254.169.254"}
        return [ipaddress.ip_address(answers[host])]

    # The worker no longer allows loopback: the endpoint on 127.0.0.1 is refused when dialled.
    world.start_webhooks(allowed="", resolve=resolve)
    async with receivers(always(Answer()), always(Answer())) as (loopback, target):
        redirect = Answer(302, b"", (("Location", f"http://localhost:{target.port}/"),))
        async with receivers(always(redirect)) as (redirecting,):
            endpoints = {
                "loopback": await create(hooks, loopback.url),
                "inside": await create(hooks, "https://inside.test/hook"),
                "metadata": await create(hooks, "https://metadata.test/hook"),
            }

            async def refused(endpoint_id: str) -> bool:
                found = await deliveries(hooks, endpoint_id)
                return bool(found) and bool(found[0]["attempts"])

            for endpoint in endpoints.values():
                await eventually(lambda e=endpoint: refused(e["id"]), message="an attempt")
                (delivery,) = await deliveries(hooks, endpoint["id"])
                attempt = delivery["attempts"][0]
                assert attempt["outcome"] == "refused", attempt
                assert attempt["statusCode"] is None
                assert "not an address" in attempt["error"]
            assert loopback.received == []
            assert {"inside.test", "metadata.test"} <= set(dialled)

    # With loopback allowed again, a redirect to localhost is an answer, never followed.
    async with receivers(always(Answer())) as (target,):
        redirect = Answer(302, b"moved", (("Location", f"http://localhost:{target.port}/"),))
        async with receivers(always(redirect)) as (redirecting,):
            await world.stop()
            world.start_relay()
            world.start_webhooks()
            moved = await create(hooks, redirecting.url)
            await eventually(lambda: len(redirecting.received) >= 2, message="two attempts")
            found = await deliveries(hooks, moved["id"])
            assert found[0]["attempts"][0]["statusCode"] == 302
            assert found[0]["attempts"][0]["outcome"] == "failed"
            assert found[0]["status"] == "pending"
            assert target.received == []


async def test_an_endpoint_failing_past_the_schedule_is_disabled_with_its_reason(
    world: World, hooks: Caller
) -> None:
    """The 24 hours, on an injected clock: every reading moves an hour on."""
    start = datetime.now(UTC)
    readings = iter(range(10**6))

    def clock() -> datetime:
        return start + timedelta(hours=next(readings))

    config = msgspec.structs.replace(QUICK, schedule=RetrySchedule(first_delay=timedelta(0)))
    world.start_webhooks(config=config, clock=clock)
    async with receivers(always(Answer(503, b"maintenance")), always(Answer())) as (
        receiver,
        healthy,
    ):
        created = await create(hooks, receiver.url)

        async def disabled() -> bool:
            found = (await hooks.get(f"/api/webhooks/{created['id']}")).json()
            return found.get("enabled") is False

        await eventually(disabled, message="the endpoint disabled")
        shown = (await hooks.get(f"/api/webhooks/{created['id']}")).json()
        assert "failed for 24 h" in shown["disabledReason"]
        assert "HTTP 503" in shown["disabledReason"]
        (delivery,) = await deliveries(hooks, created["id"])
        assert delivery["status"] == "failed"
        assert len(delivery["attempts"]) == len(receiver.received) > 1
        tried = len(receiver.received)
        await create(hooks, healthy.url)
        ids = await world.server_events(2)
        await eventually(lambda: healthy.delivered_ids()[1:] == ids, message="the others served")
        assert len(receiver.received) == tried
        assert [d["eventType"] for d in await deliveries(hooks, created["id"])] == ["webhook.test"]


async def test_a_rotated_secret_signs_beside_the_old_one_and_redeliveries_keep_the_id(
    world: World, hooks: Caller
) -> None:
    world.start_webhooks()
    async with receivers(always(Answer())) as (receiver,):
        created = await create(hooks, receiver.url)
        await eventually(lambda: len(receiver.delivered_ids()) == 1, message="the test event")
        rotated = await hooks.post(f"/api/webhooks/{created['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != created["secret"]
        ids = await world.server_events(1)
        await eventually(lambda: len(receiver.delivered_ids()) == 2, message="an event")
        latest = receiver.received[-1]
        assert latest.id == ids[0]
        assert verifies(new_secret, latest)
        assert verifies(created["secret"], latest)  # the grace period
        assert len(latest.headers["webhook-signature"].split(" ")) == 2

        found = await deliveries(hooks, created["id"])
        first = next(d for d in found if d["eventId"] == ids[0])
        path = f"/api/webhooks/{created['id']}/deliveries/{first['id']}/redeliver"
        again = await hooks.post(path)
        assert again.status_code == 202, again.text
        await eventually(lambda: len(receiver.delivered_ids()) == 3, message="the redelivery")
        assert receiver.received[-1].id == ids[0]
        assert receiver.received[-1].body == latest.body


async def test_endpoints_change_disable_and_delete_and_stay_in_their_organization(
    world: World, hooks: Caller, caller: CallerFactory
) -> None:
    world.start_webhooks()
    other = await caller(org="org-b", sub="mallory", permissions=("manage:webhooks",))
    viewer = await caller(org="org-a", sub="victor", permissions=("view:audit",))
    async with receivers(always(Answer())) as (receiver,):
        created = await create(hooks, receiver.url)
        path = f"/api/webhooks/{created['id']}"
        assert (await other.patch(path, json={"enabled": False})).status_code == 404
        assert (await other.get(f"{path}/deliveries")).status_code == 404
        assert (await other.get("/api/webhooks")).json()["webhooks"] == []
        assert (await viewer.get("/api/webhooks")).status_code == 403

        changed = await hooks.patch(path, json={"description": "chat", "enabled": False})
        assert changed.status_code == 200, changed.text
        assert changed.json()["description"] == "chat"
        assert changed.json()["enabled"] is False
        assert changed.json()["disabledReason"] == "disabled by a user"
        bad = await hooks.patch(path, json={"url": "https://169.254.169.254/"})
        assert bad.status_code == 400

        assert (await hooks.delete(path)).status_code == 204
        assert (await hooks.delete(path)).status_code == 204
        assert (await hooks.patch(path, json={"enabled": True})).status_code == 404
        await eventually(lambda: _empty(hooks), message="the deleted endpoint gone from the list")

    entries: list[dict[str, Any]] = []

    async def audited() -> list[str]:
        reply = await viewer.get("/api/audit-logs", params={"resource_type": "webhook"})
        assert reply.status_code == 200, reply.text
        assert created["secret"] not in reply.text
        assert receiver.url not in reply.text  # a URL may be a credential: only its origin
        entries[:] = reversed(reply.json()["items"])
        return [e["action"] for e in entries]

    changes = ["webhook.created", "webhook.updated", "webhook.disabled", "webhook.deleted"]
    await eventually(lambda: _audited_as(audited, changes), message="the changes audited")
    assert entries[0]["afterState"]["url"] == receiver.url.removesuffix("/hook") + "/…"
    elsewhere = await other.get("/api/audit-logs", params={"resource_type": "webhook"})
    assert elsewhere.status_code == 403 or elsewhere.json()["items"] == []


async def _audited_as(audited: Callable[[], Awaitable[list[str]]], actions: list[str]) -> bool:
    return await audited() == actions


async def _empty(hooks: Caller) -> bool:
    return bool((await hooks.get("/api/webhooks")).json()["webhooks"] == [])


def certificate_for(name: str, folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for `name`: the receiver's TLS context, and the file a
    client trusts it by."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return server, cert_file


async def test_https_dials_the_checked_address_and_still_verifies_the_host_name(
    world: World, hooks: Caller, tmp_path: Path
) -> None:
    good, good_cert = certificate_for("hooks.test", tmp_path)
    wrong, wrong_cert = certificate_for("other.test", tmp_path)
    trusted = ssl.create_default_context(cafile=str(good_cert))
    trusted.load_verify_locations(cafile=str(wrong_cert))

    async def resolve(host: str, port: int) -> list[IpAddress]:
        assert host in ("hooks.test", "mismatch.test"), host
        return [ipaddress.ip_address("127.0.0.1")]

    world.start_webhooks(resolve=resolve, ssl_context=trusted)
    matching, mismatched = Receiver(tls=good), Receiver(tls=wrong)
    for receiver in (matching, mismatched):
        await receiver.start()
    try:
        created = await create(hooks, f"https://hooks.test:{matching.port}/hook")
        refused = await create(hooks, f"https://mismatch.test:{mismatched.port}/hook")
        await eventually(lambda: matching.delivered_ids(), message="delivered over TLS")
        assert verifies(created["secret"], matching.received[0])

        async def tried() -> bool:
            found = await deliveries(hooks, refused["id"])
            return bool(found and found[0]["attempts"])

        await eventually(tried, message="an attempt at the wrong certificate")
        attempt = (await deliveries(hooks, refused["id"]))[0]["attempts"][0]
        assert attempt["outcome"] == "network"
        assert "CERTIFICATE_VERIFY_FAILED" in attempt["error"] or "hostname" in attempt["error"]
        assert mismatched.received == []
    finally:
        for receiver in (matching, mismatched):
            await receiver.close()
