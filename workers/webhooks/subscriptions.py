"""The webhook endpoints as of the point of the log the fan-out has reached: an endpoint
receives the events logged after it was created, while it is enabled."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from commands.webhook import Enabled, Subscription, WebhookState, fold
from events.publishing import WireEvent
from events.store import EventStore, RecordedEvent
from events.webhook import webhook_stream

_LIVE_ENDPOINTS: Final = b"SELECT id FROM webhook_endpoints"


class _Owner(msgspec.Struct):
    org_id: str = ""


_owner: Final = msgspec.json.Decoder(_Owner)


class Known(msgspec.Struct, frozen=True):
    org_id: str
    created_at_position: int
    state: WebhookState


def org_of(metadata: bytes | str) -> str:
    return _owner.decode(metadata).org_id


class Subscriptions:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._known: dict[str, Known] = {}
        self._by_org: dict[str, set[str]] = {}

    async def load(self) -> None:
        """Every live endpoint as it is now (the fan-out's starting point: events of an
        endpoint it passes later fold it again as of that event)."""
        async with self._store.pool.connection() as conn:
            cur = await conn.execute(_LIVE_ENDPOINTS)
            ids = [str(row[0]) for row in await cur.fetchall()]
        found = await self._store.read_streams({webhook_stream(i): 0 for i in ids})
        for recorded in found.values():
            self._remember(recorded)

    async def passed(self, wire: WireEvent) -> WebhookState:
        """The endpoint as of its event `wire`, which the fan-out just reached."""
        recorded = await self._store.read_stream(wire.stream_id, 0, wire.version)
        return self._remember(recorded)

    def receiving(self, org_id: str, name: str, position: int) -> Iterable[Subscription]:
        for endpoint_id in self._by_org.get(org_id, ()):
            known = self._known[endpoint_id]
            state = known.state
            if (
                isinstance(state, Enabled)
                and state.subscription.wants(name)
                and position > known.created_at_position
            ):
                yield state.subscription

    def any_in(self, org_id: str) -> bool:
        return bool(self._by_org.get(org_id))

    def _remember(self, recorded: list[RecordedEvent]) -> WebhookState:
        state = fold(self._store.decode_all(recorded))
        if not recorded:
            return state
        endpoint_id = recorded[0].stream_id.removeprefix("webhook-")
        org_id = org_of(recorded[0].metadata)
        self._known[endpoint_id] = Known(org_id, recorded[0].position, state)
        self._by_org.setdefault(org_id, set()).add(endpoint_id)
        return state
