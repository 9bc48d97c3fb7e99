"""The instance as a write of this process left it, for the write's answer: folded from the
events the write decided on and stored, never read back."""

from __future__ import annotations

from collections import OrderedDict

from commands.runner import Outcome
from events.registry import EventRegistry
from events.store import EventStore
from projections.instances import INSTANCES, InstanceView
from projections.runtime.fold import fold, fold_stream


class WrittenInstances:
    """Per-process memory of the instance views the last writes answered with (at most
    `capacity`, least recently used forgotten first): a write decided on a remembered state
    (commands.stream_states) read no stream to fold, so its view is the remembered one moved
    on by the events it stored."""

    def __init__(self, store: EventStore, capacity: int = 4096) -> None:
        self._store = store
        self._registry: EventRegistry = store.registry
        self._capacity = capacity
        self._views: OrderedDict[str, InstanceView] = OrderedDict()

    async def after(self, stream_id: str, outcome: Outcome) -> InstanceView | None:
        """The instance at `outcome.version`, as the write left it (None: no such instance)."""
        if outcome.read is not None:
            view = fold(INSTANCES, [*outcome.read, *outcome.recorded], self._registry)
        elif (view := self._moved_on(stream_id, outcome)) is None:
            # Decided on a remembered state whose view this process forgot: read it, up to
            # the write's version (later writes of others are not this write's answer).
            view = await fold_stream(
                self._store, INSTANCES, stream_id, up_to_version=outcome.version
            )
        if view is None:
            self._views.pop(stream_id, None)
            return None
        self._views[stream_id] = view
        self._views.move_to_end(stream_id)
        while len(self._views) > self._capacity:
            self._views.popitem(last=False)
        return view

    def _moved_on(self, stream_id: str, outcome: Outcome) -> InstanceView | None:
        """The remembered view moved on by the write's events, if it is the one they follow."""
        view = self._views.get(stream_id)
        if view is None or view.version != outcome.version - len(outcome.recorded):
            return None
        for recorded in outcome.recorded:
            view, _ = INSTANCES.apply(view, recorded, self._registry)
            if view is None:
                return None
        return view
