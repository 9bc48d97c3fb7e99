"""Per-process memory of streams' folded states, so a command on a stream this process wrote
a moment ago decides without reading the stream again.

Nothing here is trusted on its own: the runner appends with the remembered version as the
expected one, so a state another process (or replica) moved on since is caught by the store's
version check, and the command is decided again on the stream read afresh (commands.runner).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from events.registry import DomainEvent

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Remembered(Generic[S]):
    """A stream's state as this process last saw it: at `version`, written for `org_id`."""

    state: S
    version: int
    org_id: str


class StreamStates(Generic[S]):
    """The last known state of at most `capacity` streams, least recently used forgotten
    first. `evolve` is the state's own fold step, so a state moves on by the events a command
    appended without folding its stream again."""

    def __init__(self, evolve: Callable[[S, DomainEvent], S], capacity: int = 4096) -> None:
        self._evolve = evolve
        self._capacity = capacity
        self._known: OrderedDict[str, Remembered[S]] = OrderedDict()

    def get(self, stream_id: str, org_id: str) -> Remembered[S] | None:
        """The remembered state, unless none is or it is of another organization's stream
        (which the runner loads, and finds absent for this caller, as it would unremembered)."""
        known = self._known.get(stream_id)
        if known is None or known.org_id != org_id:
            return None
        self._known.move_to_end(stream_id)
        return known

    def remember(self, stream_id: str, known: Remembered[S]) -> None:
        self._known[stream_id] = known
        self._known.move_to_end(stream_id)
        while len(self._known) > self._capacity:
            self._known.popitem(last=False)

    def advanced(
        self, stream_id: str, before: Remembered[S], events: Iterable[DomainEvent], version: int
    ) -> None:
        """Remember the state `before` moved on by `events`, which brought it to `version`."""
        state = before.state
        for event in events:
            state = self._evolve(state, event)
        self.remember(stream_id, Remembered(state, version, before.org_id))

    def forget(self, stream_id: str) -> None:
        self._known.pop(stream_id, None)
