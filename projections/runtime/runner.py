"""One projection in one process: a standby until it holds the projection's leader lock, then
the leader, applying the log until it is stopped, loses the lock, or meets a poison event."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Final, Literal

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from events.leader import LeaderLock
from events.store import RecordedEvent
from projections.runtime.bell import Ring, wait_any
from projections.runtime.errors import PoisonEvent
from projections.runtime.presence import labelled, leader_lock_name
from projections.runtime.projection import Projection
from projections.runtime.projector import Projector
from projections.runtime.status import (
    Failure,
    record_failed,
    record_recovered,
    record_running,
    record_stopped,
)
from projections.runtime.tail import LogTail

log = logging.getLogger(__name__)

RunnerState = Literal["standby", "running", "failed", "stopped"]
_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


class _HiddenAppends:
    """How long to wait after a step that found nothing.

    The bell rings once an append has committed, so a step that then finds nothing was held
    back by the xmin rule (events.store: a transaction older than the append was still open).
    That transaction usually ends within milliseconds and rings no bell of its own, so look
    again soon, backing off, instead of waiting for the next poll (read-your-writes waits on it).
    """

    _FIRST: Final = 0.004
    _TRIES: Final = 6

    def __init__(self) -> None:
        self._tries = 0

    def reset(self) -> None:
        self._tries = 0

    def next_wait(self, rang: bool, poll: float) -> float:
        if not rang and self._tries == 0:
            return poll
        if self._tries >= self._TRIES:
            self._tries = 0
            return poll
        self._tries += 1
        return min(poll, self._FIRST * (1 << (self._tries - 1)))


class ProjectionRunner:
    def __init__(
        self,
        projection: Projection,
        pool: AsyncConnectionPool[Any],
        conninfo: str,
        bell: Ring,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        retry_interval: float = 0.5,
        tail: LogTail | None = None,
    ) -> None:
        self.name = projection.name
        self.state: RunnerState = "standby"
        self._projector = Projector(projection, batch_size=batch_size, tail=tail)
        self._pool = pool
        self._bell = bell
        self._poll = poll_interval
        self._retry = retry_interval
        self._lock = LeaderLock(
            labelled(conninfo, self.name), leader_lock_name(self.name), retry_interval
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Lead or stand by until `stop`; a failed projection ends here (other processes,
        perhaps with fixed code, may still take it over)."""
        try:
            while not stop.is_set() and self.state != "failed":
                self.state = "standby"
                if not await self._lock.acquire(stop):
                    break
                log.info("projection %s: leading", self.name)
                try:
                    await self._lead(stop)
                finally:
                    await self._lock.release()
        finally:
            if self.state != "failed":
                self.state = "stopped"

    async def _lead(self, stop: asyncio.Event) -> None:
        self.state = "running"
        self._projector.forget_position()  # another leader may have moved on meanwhile
        failure: Failure | None = None
        announced = False
        next_lock_check = time.monotonic() + self._retry
        hidden = _HiddenAppends()
        batch: Sequence[RecordedEvent] = ()
        since = time.monotonic()
        while not stop.is_set():
            rang = self._bell.is_set()
            self._bell.clear()
            # The log as of when: the ring (every append it rang for has committed), or now
            # after a poll or a wait; a batch's sequel still needs only what its read needed.
            if rang:
                since = self._bell.rung_at
            elif not batch:
                since = time.monotonic()
            try:
                async with self._pool.connection() as conn:
                    if not announced:
                        failure = await record_running(conn, self.name)
                        announced = True
                    batch = await self._projector.step(conn, since)
                    if failure is not None and failure.passed_by(batch):
                        await record_recovered(conn, self.name)
                        failure = None
            except _TRANSIENT as e:
                log.warning("projection %s: database unavailable (%s); retrying", self.name, e)
                batch = ()
                await wait_any(self._retry, stop)
                continue
            except Exception as e:
                await self._fail(e)
                return
            if batch:
                hidden.reset()
            else:
                due = self._projector.save_due_in()
                wait = hidden.next_wait(rang, self._poll)
                await wait_any(wait if due is None else min(due, wait), self._bell, stop)
            if time.monotonic() >= next_lock_check:
                if not await self._lock.still_held():
                    log.error("projection %s: lost its leader lock; standing by", self.name)
                    return
                next_lock_check = time.monotonic() + self._retry
        try:
            async with self._pool.connection() as conn:
                await self._projector.save(conn)
                await record_stopped(conn, self.name)
        except _TRANSIENT as e:
            log.warning("projection %s: could not record its stop (%s)", self.name, e)

    async def _fail(self, error: Exception) -> None:
        self.state = "failed"
        log.error("projection %s stopped: %s", self.name, error, exc_info=error)
        position = error.position if isinstance(error, PoisonEvent) else None
        message = str(error) or type(error).__name__
        try:
            async with self._pool.connection() as conn:
                await record_failed(conn, self.name, message, position)
        except _TRANSIENT as e:
            log.error("projection %s: could not record its failure (%s)", self.name, e)
