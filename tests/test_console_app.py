"""The console as the app serves it, without a browser: its pages and files under a strict
Content-Security-Policy, /schema from odoofleet's own copy of Swagger UI, and the
health-history read behind the instance page's sparkline."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from api_fixtures import Caller, new_server, running_instance
from test_health_api import observed_twice

from events.store import EventStore

PAGES = ("/", "/login", "/servers", "/audit", "/instances/6f1c1b8e-0000-4000-8000-000000000000")


async def test_every_console_page_is_the_shell_under_a_strict_policy(
    anonymous: httpx.AsyncClient,
) -> None:
    for path in PAGES:
        response = await anonymous.get(path)

        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/console/static/app.js">' in response.text
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy


async def test_the_shell_has_no_inline_script_and_names_no_other_origin(
    anonymous: httpx.AsyncClient,
) -> None:
    shell = (await anonymous.get("/")).text
    schema = (await anonymous.get("/schema")).text

    for page in (shell, schema):
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) is None  # every script a file
        assert re.search(r"(src|href)=\"(https?:)?//", page) is None  # nothing from elsewhere


async def test_the_console_files_are_served_with_the_policy(
    anonymous: httpx.AsyncClient,
) -> None:
    for name in ("app.js", "api.js", "charts.js", "console.css", "schema.js"):
        response = await anonymous.get(f"/console/static/{name}")

        assert response.status_code == 200, name
        assert "content-security-policy" in response.headers
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (await anonymous.get("/console/static/nothing.js")).status_code == 404


async def test_the_api_docs_load_swagger_ui_from_odoofleet_itself(
    anonymous: httpx.AsyncClient,
) -> None:
    page = (await anonymous.get("/schema")).text
    assets = re.findall(r'(?:src|href)="(/schema/assets/[^"]+)"', page)

    assert sorted(assets) == [
        "/schema/assets/swagger-ui-bundle.js",
        "/schema/assets/swagger-ui.css",
    ]
    for path in assets:
        response = await anonymous.get(path)
        assert response.status_code == 200, path
        assert len(response.content) > 10_000
    assert 'data-spec="/schema/openapi.json"' in page


async def test_the_health_history_gives_the_buckets_of_the_last_day(
    alice: Caller, store: EventStore
) -> None:
    instance, position = await observed_twice(alice, store, earlier=timedelta(minutes=10))

    response = await alice.get(
        f"/api/instances/{instance['id']}/health-history", headers={"X-Min-Position": position}
    )

    assert response.status_code == 200, response.text
    history = response.json()
    assert history["bucketSeconds"] == 300
    assert [(b["probes"], b["failures"], b["p95Ms"]) for b in history["buckets"]] == [
        (100, 0, 20.0),
        (100, 7, 20.0),
    ]


async def test_the_health_history_is_empty_before_the_first_observation(
    alice: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))

    response = await alice.get(f"/api/instances/{instance['id']}/health-history")

    assert response.json()["buckets"] == []


async def test_another_organizations_health_history_is_not_found(
    alice: Caller, mallory: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))

    response = await mallory.get(f"/api/instances/{instance['id']}/health-history")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
