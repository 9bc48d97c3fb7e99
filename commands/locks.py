"""Process-local locks per stream, to queue commands that would otherwise race."""

from __future__ import annotations

import asyncio
import weakref


class StreamLocks:
    """Commands on one stream from this process queue up instead of racing and retrying on
    a conflict; commands from other processes are still caught by the expected-version check.
    A lock lives only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, stream_id: str) -> asyncio.Lock:
        lock = self._locks.get(stream_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[stream_id] = lock
        return lock
