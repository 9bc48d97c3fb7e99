"""MCP's Odoo tools against the real-Docker tier's Odoo stand-in (issue 18): the app calls the
instance's /jsonrpc `execute_kw` over an SSH direct-tcpip channel of a real OpenSSH sshd to the
port the instance publishes on the server's loopback, with the instance's own credentials."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
import test_realdocker_odoo_image as odoo_image
import test_realdocker_sagas as sagas_tier
from api_fixtures import (
    TEST_HOST_PORTS,
    Caller,
    client_of,
    http_served,
    mint,
    new_server,
    running_instance,
    serving,
)
from builders import meta
from litestar import Litestar
from mcp import Client
from mcp_fixtures import mcp_client, structured, tool_names
from realdocker_fixtures import (  # noqa: F401
    DockerFleet,
    docker_engine_fixture,
    docker_fleet_fixture,
    docker_server_fixture,
)
from saga_fixtures import Instance
from sshd_harness import SshdServer
from test_realdocker_odoo_image import SECRET_TARGET, OdooLab, conf_text

from api.app import create_app
from commands.defaults import db_name_for
from commands.instance_outcomes import RecordMcpCredentialsIssued, decide_outcome
from commands.instance_state import Running, fold
from commands.runner import execute_command, load
from events.instance import McpCredentialsFailed, McpCredentialsIssued, instance_stream
from events.pool import Pool
from events.secrets import MASK, Vault
from events.store import EventStore
from odoofleet.settings import Settings
from workers.odoo.api_user import ApiCredentials, api_user_script, parse_api_user_output
from workers.odoo.jsonrpc import OdooRefused, OdooRpc, OdooTarget
from workers.odoo.tunnel import loopback_opener
from workers.ssh.runner import SshRunner

pytestmark = pytest.mark.realdocker
# The Odoo lab's fixtures (a postgres:16 on a network of its own; a named volume).
lab = odoo_image.lab
volume = odoo_image.volume
# The sagas tier's fixtures (a validated real-Docker server; an instance provisioned on it).
server_id = sagas_tier.server_id
acme = sagas_tier.acme
VERSION = "17.0"


@pytest.fixture
async def app(settings: Settings, pool: Pool, projections: None) -> AsyncIterator[Litestar]:
    async with serving(
        create_app(settings.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    ) as app:
        yield app


@contextmanager
def odoo_served(
    lab: OdooLab, volume: str, db: str, port: int, admin_password: str
) -> Iterator[str]:
    """The instance's Odoo as provisioning leaves it: its database, the admin password
    odoofleet chose, and the app published on the server's loopback at its host port."""
    lab.init_database(VERSION, db, volume)
    script = f"env.ref('base.user_admin').write({{'password': {admin_password!r}}})\n"
    script += "env.cr.commit()\n"
    secret = {"PASSWORD_FILE": SECRET_TARGET}
    done = lab.docker("run", "--rm", "-i", "-v", f"{volume}:/var/lib/odoo",
                      *lab.odoo_args(VERSION, conf=None, env=secret),
                      "odoo", "shell", "-d", db, input=script.encode())  # fmt: skip
    assert done.returncode == 0, done.stderr
    container = lab.name(f"mcp-{secrets.token_hex(3)}")
    conf = lab.conf("mcp", conf_text(workers=0))
    lab.docker("run", "-d", "--name", container, "-p", f"127.0.0.1:{port}:8069",
               "-v", f"{volume}:/var/lib/odoo",
               *lab.odoo_args(VERSION, conf=conf, env=secret))  # fmt: skip
    try:
        lab.serving(container)
        yield container
    finally:
        lab.docker("rm", "-f", container, check=False)


class Shop:
    def __init__(
        self,
        instance: dict[str, Any],
        alice: Caller,
        client: Client,
        issue: Callable[[], Awaitable[ApiCredentials]],
    ) -> None:
        self.id = instance["id"]
        self.prefix = instance["slug"].replace("-", "_")
        self.alice = alice
        self.client = client
        self.issue = issue

    async def call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        return structured(await self.client.call_tool(f"{self.prefix}_{operation}", arguments))

    async def refused(self, operation: str, **arguments: Any) -> str:
        result = await self.client.call_tool(f"{self.prefix}_{operation}", arguments)
        assert result.is_error
        return result.content[0].text  # type: ignore[union-attr]


@asynccontextmanager
async def shop_on_odoo(
    app: Litestar,
    settings: Settings,
    store: EventStore,
    lab: OdooLab,
    volume: str,
    sshd: SshdServer,
    vault: Vault,
    *,
    with_credentials: bool = True,
) -> AsyncIterator[Shop]:
    """A running instance on a registered server (the test's sshd), its Odoo served, its MCP
    credentials issued (unless `with_credentials` is false), and an MCP session of its
    organization's manager."""
    async with client_of(app, mint(settings)) as alice, http_served(app) as base_url:
        server_id = await new_server(
            alice, host="127.0.0.1", port=sshd.port, sshUser="root",
            sshPrivateKey=sshd.client_private_key,
        )  # fmt: skip
        instance = await running_instance(alice, store, server_id)
        credentials = await alice.get(f"/api/instances/{instance['id']}/admin-credentials")
        assert credentials.status_code == 200, credentials.text
        db, port = db_name_for(instance["slug"]), instance["httpPortHost"]
        with odoo_served(lab, volume, db, port, credentials.json()["password"]) as container:

            async def issue() -> ApiCredentials:
                return await issue_mcp_credentials(alice, store, vault, lab, container, instance)

            if with_credentials:
                await issue()
            async with mcp_client(base_url, mint(settings)) as client:
                yield Shop(instance, alice, client, issue)


OpenShop = Callable[..., AbstractAsyncContextManager[Shop]]


@pytest.fixture
def open_shop(
    app: Litestar,
    settings: Settings,
    store: EventStore,
    vault: Vault,
    lab: OdooLab,
    volume: str,
    sshd: SshdServer,
) -> OpenShop:
    """`shop_on_odoo` over this test's app, store, vault, Odoo lab and sshd."""
    return partial(shop_on_odoo, app, settings, store, lab, volume, sshd, vault)


async def issue_mcp_credentials(
    alice: Caller,
    store: EventStore,
    vault: Vault,
    lab: OdooLab,
    container: str,
    instance: dict[str, Any],
) -> ApiCredentials:
    """A rotation asked for through the API, then what the mcp-credentials saga's step does on
    the server (workers/sagas/mcp_credentials.py), with the lab's Docker for the server's: the
    API user script in the running Odoo, the key sealed under the instance's data key and
    recorded as the operation's outcome through the instance's outcome decider."""
    asked = await alice.post(f"/api/instances/{instance['id']}/mcp/rotate-credentials")
    assert asked.status_code == 202, asked.text
    operation_id = asked.json()["id"]
    db = db_name_for(instance["slug"])
    shell = ["exec", "-i", container, "/entrypoint.sh", "odoo", "shell", "-d", db, "--no-http"]
    done = lab.docker(*shell, input=api_user_script().encode())
    assert done.returncode == 0, done.stderr
    issued = parse_api_user_output(done.stdout)
    stream_id = instance_stream(instance["id"])
    outcome = RecordMcpCredentialsIssued(
        operation_id=operation_id,
        login=issued.login,
        api_key=await vault.seal(stream_id, issued.key),
    )
    await execute_command(
        store, stream_id, fold, decide_outcome, outcome, datetime.now(UTC), meta(),
        idempotency_key=f"{operation_id}/outcome",
    )  # fmt: skip
    return issued


async def test_odoo_tools_read_and_write_partners_through_the_servers_ssh(
    open_shop: OpenShop,
) -> None:
    async with open_shop() as shop:
        assert f"{shop.prefix}_create" not in await tool_names(shop.client)
        assert "not available" in await shop.refused("create", model="res.partner", values={})
        await shop.alice.patch(f"/api/instances/{shop.id}", json={"mcpWriteEnabled": True})

        partner = (await shop.call("create", model="res.partner", values={"name": "Acme"}))["id"]
        await shop.call("write", model="res.partner", ids=[partner], values={"phone": "+32 2"})
        found = await shop.call(
            "search_read", model="res.partner", domain=[["name", "ilike", "acme"]],
            fields=["name", "phone"],
        )  # fmt: skip
        read = await shop.call("read", model="res.partner", ids=[partner], fields=["phone"])
        fields = {
            f["name"]: f for f in (await shop.call("fields_get", model="res.partner"))["fields"]
        }
        models = await shop.call("list_models", search="res.")
        deleted = await shop.call("unlink", model="res.partner", ids=[partner])
        missing = await shop.refused("read", model="res.partner", ids=[partner])
        # The allowlist holds whatever the instance allows: users are never written.
        users = await shop.refused("write", model="res.users", ids=[2], values={"name": "x"})
        # The instance's own allowlist (PATCH mcpModelAccess) narrows it further.
        narrow = {"read": ["res.partner"], "write": ["res.partner"], "unlink": []}
        patched = await shop.alice.patch(
            f"/api/instances/{shop.id}", json={"mcpModelAccess": narrow}
        )
        assert patched.status_code == 200, patched.text
        kept = await shop.call("create", model="res.partner", values={"name": "Kept"})
        no_unlink = await shop.refused("unlink", model="res.partner", ids=[kept["id"]])
        no_read = await shop.refused("search_read", model="res.country")
    assert found["records"] == [{"id": partner, "name": "Acme", "phone": "+32 2"}]
    assert found["nextOffset"] is None
    assert read["records"] == [{"id": partner, "phone": "+32 2"}]
    assert fields["email"]["type"] == "char"
    assert {"model": "res.partner", "name": "Contact"}.items() <= models["records"][0].items()
    assert deleted["deleted"] is True
    assert "MissingError" in missing
    assert "not allowed" in users
    assert "unlink access to the model 'res.partner' is not allowed" in no_unlink
    assert "read access to the model 'res.country' is not allowed" in no_read


async def test_search_read_pages_and_caps_what_reaches_the_prompt(
    open_shop: OpenShop, settings: Settings
) -> None:
    async with open_shop() as shop:
        await shop.alice.patch(f"/api/instances/{shop.id}", json={"mcpWriteEnabled": True})
        for n in range(5):
            # A note longer than a prompt should carry for one field.
            values = {"name": f"Bulk {n}", "comment": "x" * 5000}
            await shop.call("create", model="res.partner", values=values)
        query = {"model": "res.partner", "domain": [["name", "like", "Bulk"]], "order": "id"}
        first = await shop.call("search_read", **query, limit=2, fields=["name", "comment"])
        second = await shop.call("search_read", **query, limit=2, offset=first["nextOffset"])
        last = await shop.call("search_read", **query, limit=2, offset=second["nextOffset"])
    assert [r["display_name"] for r in second["records"]] == ["Bulk 2", "Bulk 3"]
    assert [r["name"] for r in first["records"]] == ["Bulk 0", "Bulk 1"]
    assert (first["nextOffset"], second["nextOffset"], last["nextOffset"]) == (2, 4, None)
    assert all(len(r["comment"]) < 2100 for r in first["records"])
    assert len(str(first)) < settings.mcp_result_max_bytes


async def test_odoo_tools_call_as_the_issued_api_user_and_a_rotation_takes_over(
    open_shop: OpenShop, store: EventStore, vault: Vault
) -> None:
    async with open_shop(with_credentials=False) as shop:
        before = await shop.refused("search_read", model="res.partner")
        first = await shop.issue()
        with_first = await shop.call("search_read", model="res.partner", limit=1)
        second = await shop.issue()  # revokes the first key in Odoo
        with_second = await shop.call("search_read", model="res.partner", limit=1)
        state = (await load(store, instance_stream(shop.id), fold)).state
        assert isinstance(state, Running)
        in_force = state.facts.mcp_credentials
        assert in_force is not None
        opened = await vault.open(instance_stream(shop.id), in_force.api_key)
        # What the instance's deletion does (workers/sagas/teardown.py): the key it was sealed
        # under is gone, and with it the MCP key (the API process forgets its copy within
        # events/secrets.py's brief key cache; by then the instance offers no tools anyway).
        await vault.forget(instance_stream(shop.id))
        shredded = await vault.open(instance_stream(shop.id), in_force.api_key)
    assert "rotate-credentials" in before
    assert in_force.login == second.login == "odoofleet-mcp"
    assert first.key != second.key
    assert "records" in with_first
    assert "records" in with_second
    assert opened == second.key
    assert shredded == MASK


@contextmanager
def odoo_container(lab: OdooLab, volume: str, db: str) -> Iterator[tuple[str, int]]:
    """A served Odoo with database `db`: its container and its port on 127.0.0.1."""
    lab.init_database(VERSION, db, volume)
    conf = lab.conf("key", conf_text(workers=0))
    container = lab.start(f"key-{secrets.token_hex(3)}", VERSION, conf=conf,
                          env={"PASSWORD_FILE": SECRET_TARGET}, volume=volume)  # fmt: skip
    try:
        yield container, lab.serving(container)
    finally:
        lab.docker("rm", "-f", container, check=False)


async def test_the_api_user_script_gives_a_key_that_rpc_accepts_and_a_rotation_revokes(
    lab: OdooLab, volume: str, sshd: SshdServer
) -> None:
    def run_script(container: str, db: str) -> ApiCredentials:
        shell = ["exec", "-i", container, "/entrypoint.sh", "odoo", "shell", "-d", db, "--no-http"]
        done = lab.docker(*shell, input=api_user_script().encode())
        assert done.returncode == 0, done.stderr
        return parse_api_user_output(done.stdout)

    runner = SshRunner()
    rpc = OdooRpc(loopback_opener(runner), timeout=30)
    try:
        with odoo_container(lab, volume, "acme_key") as (container, port):
            first = run_script(container, "acme_key")

            def target(credentials: ApiCredentials) -> OdooTarget:
                return OdooTarget(
                    server=sshd.connection_info(), port=port, host="acme.test", db="acme_key",
                    login=credentials.login, password=credentials.key,
                )  # fmt: skip

            assert await rpc.authenticate(target(first)) == first.uid
            found = await rpc.execute_kw(
                target(first), "res.partner", "search_read", [[]], {"fields": ["name"]}
            )
            second = run_script(container, "acme_key")
            with pytest.raises(OdooRefused):
                await rpc.authenticate(target(first))
            assert await rpc.authenticate(target(second)) == first.uid
    finally:
        await runner.close()
    assert first.key != second.key
    assert isinstance(found, list)


async def test_after_provisioning_on_real_docker_the_saga_issues_an_odoo_api_key(
    docker_fleet: DockerFleet, acme: Instance
) -> None:
    """The whole path on the real-Docker tier: the first provisioning's outcome asks for the
    credentials, the saga runs the API user script in the running colour's real container
    (`docker exec -i … odoo shell`) and records the key Odoo printed, sealed."""
    found = await docker_fleet.wait_for(
        acme.stream, McpCredentialsIssued, McpCredentialsFailed, timeout=180
    )

    assert isinstance(found, McpCredentialsIssued), found
    assert found.login == "odoofleet-mcp"
    key = await docker_fleet.vault.open(acme.stream, found.api_key)
    assert re.fullmatch(r"[0-9a-f]{16,128}", key), "not an Odoo API key"
    operation = await docker_fleet.operation(found.operation_id)
    assert key not in str(operation)
