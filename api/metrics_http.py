"""Request counts and latency by route and status, kept in this API process."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HttpMetrics:
    """Counters and a latency histogram per (method, route template, status)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self.sums: dict[tuple[str, str, int], float] = defaultdict(float)
        self.buckets: dict[tuple[str, str, int], list[int]] = defaultdict(
            lambda: [0] * (len(BUCKETS) + 1)
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.counts[key] += 1
        self.sums[key] += seconds
        self.buckets[key][bisect_left(BUCKETS, seconds)] += 1

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The app, measured. Outside Litestar's routing, so 404s and 405s count too."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            method = scope["method"]
            began = time.perf_counter()
            status = 500

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                route = str(scope.get("path_template") or "unmatched")
                self.observe(method, route, status, time.perf_counter() - began)

        return measured

    def render(self) -> list[str]:
        lines = [
            "# HELP odoofleet_http_requests_total HTTP requests by route and status.",
            "# TYPE odoofleet_http_requests_total counter",
        ]
        for (method, route, status), count in sorted(self.counts.items()):
            lines.append(f"odoofleet_http_requests_total{_labels(method, route, status)} {count}")
        lines += [
            "# HELP odoofleet_http_request_duration_seconds HTTP request latency.",
            "# TYPE odoofleet_http_request_duration_seconds histogram",
        ]
        for key, counts in sorted(self.buckets.items()):
            method, route, status = key
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                labels = _labels(method, route, status, le=le)
                lines.append(f"odoofleet_http_request_duration_seconds_bucket{labels} {running}")
            base = _labels(method, route, status)
            lines.append(f"odoofleet_http_request_duration_seconds_sum{base} {self.sums[key]}")
            lines.append(f"odoofleet_http_request_duration_seconds_count{base} {running}")
        return lines


def _labels(method: str, route: str, status: int, **extra: str) -> str:
    pairs = {"method": method, "route": route, "status": str(status), **extra}
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs.items()) + "}"


def escape(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
