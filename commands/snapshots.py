"""Folded states of streams that one process decides on again and again (a server's host
ports, read by every create on that server), so that a command reads only the events
appended since it last looked. A stream only grows, so a state folded up to version N stays
the fold of the stream's first N events: a snapshot can be old, never wrong."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic

from commands.runner import Loaded, S


class Snapshots(Generic[S]):
    """The newest folded state seen per stream, the `capacity` most recently used."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._states: OrderedDict[str, Loaded[S]] = OrderedDict()

    def get(self, stream_id: str) -> Loaded[S] | None:
        found = self._states.get(stream_id)
        if found is not None:
            self._states.move_to_end(stream_id)
        return found

    def put(self, stream_id: str, loaded: Loaded[S]) -> None:
        known = self._states.get(stream_id)
        if known is None or known.version < loaded.version:
            self._states[stream_id] = loaded
        self._states.move_to_end(stream_id)
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)
