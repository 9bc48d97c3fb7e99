"""Request counts and latency by route and status, kept in this API process.

Every label value comes from a fixed set: the request line is the client's to choose (any
method name, any path), and a label per distinct value let one client grow this process's
memory and every scrape without bound (issue 13: 340 MB of /metrics).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict
from http import HTTPStatus
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
UNMATCHED: Final = "unmatched"
# Far above the (route, method, status) combinations really seen (a few dozen); past it,
# requests still count, under one overflow series.
MAX_SERIES: Final = 500
OVERFLOW: Final = ("other", "overflow", "other")
_STATUSES: Final = frozenset(int(status) for status in HTTPStatus)

Key = tuple[str, str, str]


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def status_label(status: int) -> str:
    """The code when HTTP defines it, else its class (`5xx`)."""
    if status in _STATUSES:
        return str(status)
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class HttpMetrics:
    """Counters and a latency histogram per (method, route template, status)."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self.max_series = max_series
        self.counts: dict[Key, int] = defaultdict(int)
        self.sums: dict[Key, float] = defaultdict(float)
        self.buckets: dict[Key, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method_label(method), route, status_label(status))
        if key not in self.counts and len(self.counts) >= self.max_series - 1:
            key = OVERFLOW
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
                # Litestar sets the template only for a matched route: never the raw path.
                route = str(scope.get("path_template") or UNMATCHED)
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

    @property
    def series(self) -> int:
        return len(self.counts)


def _labels(method: str, route: str, status: str, **extra: str) -> str:
    pairs = {"method": method, "route": route, "status": status, **extra}
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs.items()) + "}"


def escape(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
