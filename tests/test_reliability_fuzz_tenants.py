"""Generated requests from callers who may not do what they ask: a view-only caller (every
write is 403, nothing is written) and a caller of another organization (the first
organization's resources answer exactly as ids that name nothing; nothing of it shows).

Same approach as tests/test_reliability_fuzz.py: schemathesis against `odoofleet serve`.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Final

import httpx
import msgspec
import requests
import schemathesis
from api_fixtures import EVERYTHING, VIEW_ONLY, mint, record, server_body
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from reliability_fixtures import served_api
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err
from schemathesis.transport.prepare import get_exclude_headers

from events.instance import InstanceProvisioned, instance_stream
from events.pool import Pool
from events.secrets import MASK
from events.server import server_stream
from events.store import EventStore
from odoofleet.settings import Settings

Case = schemathesis.Case[Any]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]

AT_LEAST: Final = 400
# The same generated requests on every run, so CI is repeatable; ODOOFLEET_FUZZ_RANDOM=1
# explores new ones.
FIXED_EXAMPLES: Final = not os.environ.get("ODOOFLEET_FUZZ_RANDOM")
EXAMPLES_PER_STRATEGY: Final = 30
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
WRITES: Final = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Every write of API.md: each must have been tried (and refused) by the view-only caller.
WRITE_OPERATIONS: Final = {
    "POST /api/instances",
    "PATCH /api/instances/{instance_id}",
    "DELETE /api/instances/{instance_id}",
    "POST /api/instances/{instance_id}/control",
    "POST /api/instances/{instance_id}/admin-credentials/rotate",
    "POST /api/instances/{instance_id}/mcp/rotate-credentials",
    "POST /api/instances/{instance_id}/backups",
    "PUT /api/instances/{instance_id}/backup-schedule",
    "POST /api/instances/{instance_id}/domains",
    "DELETE /api/instances/{instance_id}/domains/{domain_id}",
    "PUT /api/instances/{instance_id}/domains/{domain_id}/primary",
    "POST /api/instances/{instance_id}/domains/{domain_id}/verify",
    "DELETE /api/backups/{backup_id}",
    "POST /api/backups/{backup_id}/restore",
    "POST /api/backup-destinations",
    "DELETE /api/backup-destinations/{destination_id}",
    "POST /api/servers",
    "DELETE /api/servers/{server_id}",
    "POST /api/servers/{server_id}/validate",
    "POST /api/webhooks",
    "PATCH /api/webhooks/{endpoint_id}",
    "DELETE /api/webhooks/{endpoint_id}",
    "POST /api/webhooks/{endpoint_id}/rotate-secret",
    "POST /api/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    "POST /api/api-keys",
    "DELETE /api/api-keys/{key_id}",
}
# The outsider holds every permission, so each refusal it meets is the tenancy check's.
OUTSIDER: Final = (*EVERYTHING, "manage:backups", "manage:webhooks", "manage:api-keys")
PATH_PARAMETER: Final = re.compile(r"\{(\w+)\}")
USABLE_IF_MATCH: Final = re.compile(r'\*|"\d{1,18}"')
USABLE_IDEMPOTENCY_KEY: Final = re.compile(r"[\x21-\x7e]{1,255}")


class Fuzzed(msgspec.Struct):
    """What a run sent and found: requests, problems, and each by-id operation's statuses."""

    sent: int = 0
    problems: list[str | None] = msgspec.field(default_factory=list)
    statuses: defaultdict[str, set[int]] = msgspec.field(default_factory=lambda: defaultdict(set))


class Seeded(msgspec.Struct, frozen=True):
    """org-a's resources, and strings that would give any of them away."""

    server_id: str
    instance_ids: list[str]
    running_id: str
    telltales: list[str]

    @property
    def ids(self) -> list[str]:
        return [self.server_id, *self.instance_ids]

    def id_for(self, parameter: str) -> str:
        """org-a's id for a parameter (the running instance for `instance_id`)."""
        return self.server_id if parameter == "server_id" else self.running_id

    def path_parameters(self, path: str) -> dict[str, str]:
        return {name: self.id_for(name) for name in PATH_PARAMETER.findall(path)}


async def seed(base_url: str, settings: Settings, store: EventStore) -> Seeded:
    """A server and three instances of org-a (one running), through the API."""
    headers = {"Authorization": f"Bearer {mint(settings, org='org-a', sub='alice')}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as alice:
        body = server_body(name="alice-server-7f3a", host="alice-box.example")
        server_id = (await alice.post("/api/servers", json=body)).json()["id"]
        instances = []
        for n in range(3):
            body = {
                "name": f"Alice Shop {n} q8z",
                "slug": f"alice-shop-{n}-q8z",
                "serverId": server_id,
                "envVars": {"ALICE_SECRET": f"alice-secret-value-{n}-q8z"},
            }
            answer = await alice.post("/api/instances", json=body)
            assert answer.status_code == 202, answer.text
            instances.append(answer.json()["id"])
    running = instances[0]
    provisioned = InstanceProvisioned(instance_id=running, operation_id="op", active_color="blue")
    await record(store, instance_stream(running), provisioned)
    telltales = ["alice-server-7f3a", "alice-box.example", "Alice Shop", "alice-shop-", "-q8z"]
    return Seeded(server_id, instances, running, telltales)


def api_operations(base_url: str) -> list[Operation]:
    """Every operation under /api of the served OpenAPI document."""
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    # The event stream never ends; its isolation is tested in tests/test_event_stream.py.
    return [
        operation
        for operation in operations
        if operation.path.startswith("/api/") and operation.path != "/api/events/stream"
    ]


def run_cases(strategy: Any, exchange: Callable[[Case], None], examples: int) -> None:
    """`exchange` on each case hypothesis generates from `strategy`."""

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=FIXED_EXAMPLES,
        suppress_health_check=list(HealthCheck),
    )
    def each(case: Case) -> None:
        # A generated X-Min-Position ahead of the log makes a read wait its full 2 s.
        if case.headers:
            case.headers.pop("X-Min-Position", None)
        exchange(case)

    each()


async def newest_position(pool: Pool) -> int:
    """The newest event's position, committed or not yet visible to log readers."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def json_of(response: schemathesis.Response) -> Any:
    """The answer's JSON document; None for an answer that is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def session_of(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


# ---- view-only -------------------------------------------------------------------------------


def env_values(found: Any) -> Iterator[str]:
    """Every envVars value anywhere in a JSON document."""
    if isinstance(found, dict):
        for key, value in found.items():
            if key == "envVars" and isinstance(value, dict):
                yield from (str(v) for v in value.values())
            else:
                yield from env_values(value)
    elif isinstance(found, list):
        for item in found:
            yield from env_values(item)


def viewer_problem(case: Case, response: schemathesis.Response) -> str | None:
    """What a view-only caller must never get: a write that is not 403, or a secret."""
    if case.method.upper() in WRITES and response.status_code != 403:
        return f"{case.method} {case.formatted_path}: {response.status_code}"
    shown = [value for value in env_values(json_of(response)) if value != MASK]
    if shown:
        return f"{case.method} {case.formatted_path} shows env values {shown}"
    return None


def fuzz_as_viewer(base_url: str, token: str, seeded: Seeded) -> Fuzzed:
    fuzzed = Fuzzed()
    with session_of(token) as session:

        def exchange(case: Case) -> None:
            if "Authorization" in get_exclude_headers(case):
                return  # a negative case about the credentials themselves: not the viewer's
            response = case.call_and_validate(base_url=base_url, session=session, checks=CHECKS)
            fuzzed.sent += 1
            fuzzed.statuses[f"{case.method} {case.path}"].add(response.status_code)
            fuzzed.problems.append(viewer_problem(case, response))

        for operation in api_operations(base_url):
            fixed = seeded.path_parameters(operation.path)
            writes = operation.method.upper() in WRITES
            # Invalid bodies too: the permission is checked before the body is read.
            modes = list(GenerationMode) if writes else [GenerationMode.POSITIVE]
            for mode in modes:
                strategy = operation.as_strategy(mode, path_parameters=fixed or None)
                run_cases(strategy, exchange, EXAMPLES_PER_STRATEGY)
    fuzzed.problems = [problem for problem in fuzzed.problems if problem]
    return fuzzed


async def test_a_view_only_caller_s_generated_writes_are_all_403_and_change_nothing(
    settings: Settings, store: EventStore, pool: Pool, projections: None
) -> None:
    async with served_api(settings) as base_url:
        seeded = await seed(base_url, settings, store)
        newest = await newest_position(pool)
        token = mint(settings, org="org-a", sub="victor", permissions=VIEW_ONLY)

        fuzzed = await asyncio.to_thread(fuzz_as_viewer, base_url, token, seeded)

    assert fuzzed.problems == []
    assert fuzzed.sent >= AT_LEAST
    assert {op for op in fuzzed.statuses if op.split()[0] in WRITES} == WRITE_OPERATIONS
    assert await newest_position(pool) == newest


# ---- another organization ----------------------------------------------------------------------


def swap_ids(case: Case, ids: Callable[[str], str]) -> None:
    """Put `ids(name)` in every id the case names: path parameters and a body's serverId."""
    for name in list(case.path_parameters or {}):
        case.path_parameters[name] = ids(name)
    if isinstance(case.body, dict) and "serverId" in case.body:
        case.body["serverId"] = ids("server_id")


def problem_type(response: schemathesis.Response) -> str | None:
    found = json_of(response)
    return found.get("type") if isinstance(found, dict) else None


def twin_problem(
    case: Case,
    theirs: schemathesis.Response,
    nobodys: schemathesis.Response,
) -> str | None:
    """org-a's resource must answer exactly as an id that names nothing."""
    if theirs.status_code // 100 == 2:
        return f"{case.method} {case.formatted_path}: {theirs.status_code} on org-a's resource"
    if (theirs.status_code, problem_type(theirs)) != (nobodys.status_code, problem_type(nobodys)):
        return (
            f"{case.method} {case.path}: {theirs.status_code} {problem_type(theirs)} for org-a's"
            f" resource, {nobodys.status_code} {problem_type(nobodys)} for none"
        )
    return None


def leak_problem(case: Case, response: schemathesis.Response, seeded: Seeded) -> str | None:
    sent = f"{case.formatted_path} {case.query!r} {case.body!r}"
    text = response.text or ""
    # An id the request itself carried may be echoed; nothing else of org-a may show.
    shown = [t for t in seeded.telltales + seeded.ids if t in text and t not in sent]
    return f"{case.method} {case.formatted_path} shows {shown}" if shown else None


def usable_headers_only(case: Case) -> None:
    """Leave out generated If-Match and Idempotency-Key values the API refuses with 400 before
    looking at the resource, so that more requests reach the tenancy check."""
    headers: MutableMapping[str, Any] = case.headers or {}
    if not USABLE_IF_MATCH.fullmatch(str(headers.get("If-Match", '"1"'))):
        del headers["If-Match"]
    if not USABLE_IDEMPOTENCY_KEY.fullmatch(str(headers.get("Idempotency-Key", "k"))):
        del headers["Idempotency-Key"]


def fuzz_as_outsider(base_url: str, token: str, seeded: Seeded) -> Fuzzed:
    fuzzed = Fuzzed()
    with session_of(token) as session:

        def call(case: Case) -> schemathesis.Response:
            fuzzed.sent += 1
            return case.call_and_validate(base_url=base_url, session=session, checks=CHECKS)

        def exchange(case: Case) -> None:
            usable_headers_only(case)
            # A generated body may carry a `serverId` anywhere (as an unknown field, a 400),
            # but only an instance create takes one: only there does it name org-a's server.
            names_ids = bool(case.path_parameters) or (
                f"{case.method} {case.path}" == "POST /api/instances"
                and isinstance(case.body, dict)
                and "serverId" in case.body
            )
            swap_ids(case, seeded.id_for)
            theirs = call(case)
            fuzzed.problems.append(leak_problem(case, theirs, seeded))
            if names_ids:
                fuzzed.statuses[f"{case.method} {case.path}"].add(theirs.status_code)
                swap_ids(case, lambda name: str(uuid.uuid4()))
                fuzzed.problems.append(twin_problem(case, theirs, call(case)))

        for operation in api_operations(base_url):
            ids = seeded.path_parameters(operation.path) or None
            for fixed in fixed_parts(seeded, operation):
                strategy = operation.as_strategy(path_parameters=ids, **fixed)
                run_cases(strategy, exchange, EXAMPLES_PER_STRATEGY)
    fuzzed.problems = [problem for problem in fuzzed.problems if problem]
    return fuzzed


def fixed_parts(seeded: Seeded, operation: Operation) -> list[dict[str, Any]]:
    """Strategies to run besides the freely generated one: org-a's ids in the list and audit
    filters, and bodies that would be accepted, so that writes surely reach the tenancy check
    (stopping org-a's running instance would succeed if it did not hold)."""
    named: dict[str, list[dict[str, Any]]] = {
        "GET /api/instances": [{"query": {"server_id": seeded.server_id}}],
        "GET /api/audit-logs": [
            *({"query": {"resource_id": i}} for i in seeded.ids[:2]),
            {"query": {"user_id": "alice"}},
        ],
        "PATCH /api/instances/{instance_id}": [{"body": {"name": "stolen"}}],
        "POST /api/instances/{instance_id}/control": [{"body": {"action": "stop"}}],
        "POST /api/instances/{instance_id}/domains": [{"body": {"domain": "shop.example.com"}}],
        "POST /api/instances/{instance_id}/backups": [{"body": {}}],
    }
    return [{}, *named.get(f"{operation.method.upper()} {operation.path}", [])]


def never_reached_tenancy(fuzzed: Fuzzed) -> dict[str, set[int]]:
    """Operations naming org-a's ids that never got past validation to the tenancy check:
    a 404 for a path naming org-a's resource, a 400 (serverId) for a create on its server."""
    return {
        operation: statuses
        for operation, statuses in fuzzed.statuses.items()
        if (400 if operation == "POST /api/instances" else 404) not in statuses
    }


async def org_a_events_since(pool: Pool, position: int, seeded: Seeded) -> list[str]:
    """Events appended after `position` to org-a's streams or in org-a's name."""
    streams = [instance_stream(i) for i in seeded.instance_ids] + [server_stream(seeded.server_id)]
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT stream_id || ' ' || event_type FROM events WHERE position > %s"
            " AND (stream_id = ANY(%s) OR metadata::jsonb ->> 'org_id' <> 'org-b')",
            (position, streams),
        )
        return [row[0] for row in await cur.fetchall()]


async def test_another_organization_s_generated_requests_find_nothing_of_the_first(
    settings: Settings, store: EventStore, pool: Pool, projections: None
) -> None:
    async with served_api(settings) as base_url:
        seeded = await seed(base_url, settings, store)
        newest = await newest_position(pool)
        token = mint(settings, org="org-b", sub="mallory", permissions=OUTSIDER)

        fuzzed = await asyncio.to_thread(fuzz_as_outsider, base_url, token, seeded)

    assert fuzzed.problems == []
    assert fuzzed.sent >= AT_LEAST
    assert never_reached_tenancy(fuzzed) == {}
    assert await org_a_events_since(pool, newest, seeded) == []
