"""Read-your-writes: a write reports the log position it produced (`X-Position`); a read
waits, up to a bound, for the read models to reach the position the client names
(`X-Min-Position`) or, for the same caller, the position of its own last write."""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from api.auth import Principal
from events.pool import Pool
from projections.waiting import wait_for_position

WAIT_SECONDS: Final = 2.0


class ReadYourWrites:
    """Per-process memory of each caller's last write. Another replica does not share it:
    clients that hop between replicas send `X-Min-Position` instead."""

    def __init__(self, pool: Pool, capacity: int = 10_000, timeout: float = WAIT_SECONDS) -> None:
        self._pool = pool
        self._capacity = capacity
        self._timeout = timeout
        # caller → (position of the last write, read models known to have reached it)
        self._last: OrderedDict[tuple[str, str], tuple[int, frozenset[str]]] = OrderedDict()

    def wrote(self, principal: Principal, position: int | None) -> None:
        if position is None:
            return
        caller = (principal.org_id, principal.user_id)
        known = self._last.get(caller, (0, frozenset()))[0]
        self._last[caller] = (max(known, position), frozenset())
        self._last.move_to_end(caller)
        while len(self._last) > self._capacity:
            self._last.popitem(last=False)

    async def before_read(
        self, principal: Principal, min_position: int | None, projections: tuple[str, ...]
    ) -> None:
        caller = (principal.org_id, principal.user_id)
        own, reached = self._last.get(caller, (0, frozenset()))
        if own and set(projections) <= reached:
            own = 0
        target = max(own, min_position or 0)
        if target <= 0:
            return
        caught_up = await wait_for_position(
            self._pool, target, timeout=self._timeout, projections=projections
        )
        # Remember what is known to be caught up, unless a newer write came in meanwhile.
        if caught_up and own and self._last.get(caller, (0, frozenset()))[0] == own:
            self._last[caller] = (own, reached | set(projections))
