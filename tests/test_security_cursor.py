"""Hostile list cursors: whatever a cursor decodes to, the answer is a 400 problem, never 500."""

from __future__ import annotations

import base64

import pytest
from api_fixtures import Caller


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HOSTILE = {
    "NUL in the id": b'["2026-01-01T00:00:00Z","a\\u0000b"]',
    "lone surrogate in the id": b'["2026-01-01T00:00:00Z","\\ud800"]',
    "control character in the id": b'["2026-01-01T00:00:00Z","a\\u001fb"]',
    "quote and semicolon in the id": b'["2026-01-01T00:00:00Z","a\';--"]',
    "id of 150 characters": b'["2026-01-01T00:00:00Z","' + b"a" * 150 + b'"]',
    "empty id": b'["2026-01-01T00:00:00Z",""]',
    "id of another type": b'["2026-01-01T00:00:00Z",{"$ne":1}]',
    "huge number as id": b'["2026-01-01T00:00:00Z",1' + b"0" * 100 + b"]",
    "time without an offset": b'["2026-01-01T00:00:00","a"]',
    "time of another type": b'[1e300,"a"]',
    "NUL in the time": b'["2026-01-01T00:00:00Z\\u0000","a"]',
    "one element": b'["2026-01-01T00:00:00Z"]',
    "three elements": b'["2026-01-01T00:00:00Z","a","b"]',
    "nested arrays": b"[[[[[[[[[[[]]]]]]]]]]]",
    "an object": b'{"created_at":"2026-01-01T00:00:00Z","id":"a"}',
    "not UTF-8": b'["\xff\xfe","a"]',
    "raw NUL byte": b"\x00\x00\x00",
}


@pytest.mark.parametrize("raw", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_a_hostile_cursor_is_a_400_problem(alice: Caller, raw: bytes) -> None:
    response = await alice.get("/api/instances", params={"cursor": _cursor(raw)})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1970-01-01T00:00:00Z"]
)
async def test_a_well_formed_cursor_at_the_edges_of_time_is_answered(
    alice: Caller, moment: str
) -> None:
    raw = f'["{moment}","5f0c3b54-8d1b-4c7e-9a37-1f3d2a4b5c6d"]'.encode()

    response = await alice.get("/api/instances", params={"cursor": _cursor(raw)})

    assert response.status_code == 200, response.text
