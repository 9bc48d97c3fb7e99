"""Generated requests against every documented operation: no 5xx, every answer as documented."""

from __future__ import annotations

import asyncio
import os

import pytest
import requests
import schemathesis
from api_fixtures import Caller, mint
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from reliability_fixtures import served_api
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from odoofleet.settings import Settings

AT_LEAST = 1000
# The same generated requests on every run, so CI is repeatable; ODOOFLEET_FUZZ_RANDOM=1
# explores new ones.
FIXED_EXAMPLES = not os.environ.get("ODOOFLEET_FUZZ_RANDOM")
# Some operations have fewer distinct inputs than this; the total still reaches AT_LEAST.
EXAMPLES_PER_OPERATION = 80
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _operations(base_url: str, *, metrics: bool) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # The event stream never ends: its own tests (tests/test_event_stream*.py) cover it.
    return [
        operation
        for operation in operations
        if (operation.path == "/metrics") == metrics and operation.path != "/api/events/stream"
    ]


def _fuzz(base_url: str, token: str, operations: list[schemathesis.APIOperation]) -> int:
    sent = 0
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        for operation in operations:

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=FIXED_EXAMPLES,
                suppress_health_check=list(HealthCheck),
            )
            def exchange(case: schemathesis.Case) -> None:
                nonlocal sent
                # A generated X-Min-Position ahead of the log makes a read wait its full 2 s.
                if case.headers:
                    case.headers.pop("X-Min-Position", None)
                case.call_and_validate(base_url=base_url, session=session, checks=CHECKS)
                sent += 1

            exchange()
    return sent


async def test_a_thousand_generated_requests_get_no_5xx_and_only_documented_answers(
    settings: Settings, projections: None
):
    token = mint(settings, org="org-fuzz", sub="fuzzer")
    async with served_api(settings) as base_url:
        operations = _operations(base_url, metrics=False)
        sent = await asyncio.to_thread(_fuzz, base_url, token, operations)
    assert sent >= AT_LEAST


async def test_metrics_answer_with_their_documented_content_type(settings: Settings):
    async with served_api(settings) as base_url:
        operations = _operations(base_url, metrics=True)
        await asyncio.to_thread(_fuzz, base_url, mint(settings), operations)


@pytest.mark.parametrize("field", ["resource_id", "user_id"])
async def test_a_nul_byte_in_an_audit_filter_is_400(alice: Caller, field: str):
    answer = await alice.get("/api/audit-logs", params={field: "a\x00b"})
    assert answer.status_code == 400
