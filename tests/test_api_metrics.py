"""GET /metrics: Prometheus text with requests by route and status, and the log's state."""

from __future__ import annotations

import re
import secrets

import httpx
from api_fixtures import Caller, new_instance, new_server

from api.metrics_http import OVERFLOW, HttpMetrics, status_label


async def _scrape(anonymous: httpx.AsyncClient) -> str:
    response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_count_requests_by_route_template_and_status(
    anonymous: httpx.AsyncClient, alice: Caller
):
    server_id = await new_server(alice)
    await new_instance(alice, server_id)
    await anonymous.get("/api/instances")
    await anonymous.get("/no/such/path")

    text = await _scrape(anonymous)

    assert re.search(
        r'odoofleet_http_requests_total\{method="POST",route="/api/instances",status="202"\} 1',
        text,
    )
    assert 'route="/api/instances",status="401"' in text
    assert 'route="unmatched",status="404"' in text
    assert "odoofleet_http_request_duration_seconds_bucket{" in text


async def test_metrics_report_the_log_and_its_readers(anonymous: httpx.AsyncClient, alice: Caller):
    await new_server(alice)

    text = await _scrape(anonymous)

    appended = re.search(r"^odoofleet_events_appended_total (\d+)$", text, re.M)
    assert appended is not None
    assert int(appended.group(1)) >= 1
    assert re.search(r'^odoofleet_reader_lag_events\{reader="instances"\} \d+$', text, re.M)
    assert re.search(r"^odoofleet_oldest_transaction_seconds [\d.]+$", text, re.M)
    assert "odoofleet_postgres_up 1" in text


async def test_metrics_need_no_token_and_show_no_secret(
    anonymous: httpx.AsyncClient, alice: Caller
):
    await new_server(alice)

    text = await _scrape(anonymous)

    assert "PRIVATE KEY" not in text


def _series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith("odoofleet_http_requests_total{"))


async def test_garbage_methods_and_random_paths_do_not_grow_the_metrics(
    anonymous: httpx.AsyncClient,
):
    """3,000 requests with 8 KB made-up method names and random paths (the attack of issue
    13, item 1) leave a handful of series and a /metrics answer of a few KB."""
    for n in range(1500):
        method = f"M{n:06d}" + "X" * 8192
        await anonymous.request(method, "/healthz")
        await anonymous.get(f"/{secrets.token_hex(16)}/{n}")

    text = await _scrape(anonymous)

    assert _series(text) <= 10
    assert len(text.encode()) < 32_000
    assert 'method="other",route="unmatched",status="405"} 1500' in text
    assert 'method="GET",route="unmatched",status="404"} 1500' in text
    assert "XXXX" not in text


def test_the_number_of_series_is_capped():
    metrics = HttpMetrics(max_series=5)
    for n in range(50):
        metrics.observe("GET", f"/route/{n}", 200, 0.001)

    assert metrics.series == 5
    assert sum(metrics.counts.values()) == 50
    assert metrics.counts[OVERFLOW] == 46


def test_status_labels_come_from_a_fixed_set():
    assert [status_label(s) for s in (200, 404, 599, 999, 42)] == [
        "200",
        "404",
        "5xx",
        "other",
        "other",
    ]
