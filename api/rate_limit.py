"""A token bucket per organization, for requests that send a worker to a server: repeated
without limit, `/validate` made servers a port scanner and a password guesser (issue 13)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from api.errors import problem


class RateLimit:
    """`per_minute` requests per key and minute, in bursts of up to `per_minute`. Kept in
    this API process: each process of a scaled-out API grants its own share."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def take(self, key: str, what: str) -> None:
        """One request of `key`'s; a 429 problem with Retry-After when its bucket is empty."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - then) * self._per_second)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) / self._per_second)
            raise problem(
                429,
                "too-many-requests",
                f"at most {self._capacity:g} {what} per minute; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        self._buckets[key] = (tokens - 1.0, now)
