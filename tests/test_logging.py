"""Log lines carry the ids that follow a request into its events, saga and SSH commands."""

from __future__ import annotations

import json
import logging

import msgspec
from api_fixtures import Caller, server_body

from events.log_context import log_context
from events.metadata import EventMetadata
from events.server import server_stream
from events.store import EventStore
from odoofleet.logs import JsonFormatter, TextFormatter, _ContextFilter


def _record(message: str) -> logging.LogRecord:
    record = logging.LogRecord("workers.ssh.runner", logging.INFO, __file__, 1, message, (), None)
    _ContextFilter().filter(record)
    return record


def test_a_json_line_carries_the_bound_ids():
    with log_context(correlation_id="req-1", operation_id="op-1"):
        line = JsonFormatter().format(_record("ssh 10.0.0.5:22 exit 0"))

    entry = json.loads(line)
    assert entry["correlation_id"] == "req-1"
    assert entry["operation_id"] == "op-1"
    assert entry["message"] == "ssh 10.0.0.5:22 exit 0"


def test_ids_end_with_their_block():
    with log_context(correlation_id="req-1"):
        pass

    assert "correlation_id" not in json.loads(JsonFormatter().format(_record("x")))
    assert TextFormatter().format(_record("x")).endswith("x")


async def test_the_request_id_is_echoed_and_becomes_the_events_correlation_id(
    alice: Caller, store: EventStore
):
    response = await alice.post(
        "/api/servers", json=server_body(), headers={"X-Request-Id": "req-abc-123"}
    )

    assert response.status_code == 201
    assert response.headers["x-request-id"] == "req-abc-123"
    (first, *_) = await store.read_stream(server_stream(response.json()["id"]))
    assert msgspec.json.decode(first.metadata, type=EventMetadata).correlation_id == "req-abc-123"


async def test_a_request_without_an_id_gets_one(alice: Caller):
    response = await alice.get("/api/servers", headers={"X-Request-Id": "bad id with spaces"})

    assert response.headers["x-request-id"] != "bad id with spaces"
    assert len(response.headers["x-request-id"]) == 36
