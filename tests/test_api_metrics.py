"""GET /metrics: Prometheus text with requests by route and status, and the log's state."""

from __future__ import annotations

import re

import httpx
from api_fixtures import Caller, new_instance, new_server


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
