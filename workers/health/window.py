"""What the health observer remembers of one instance between two HealthObserved events, and
how a sample becomes a status (DESIGN.md "Health").

The window gathers every probe since the last event, so the next event can carry its summary
(probes, failures, latency percentiles, restarts, OOM kills, peak memory) and the read model
rebuilds the score from the log alone. Only a change of status, or the heartbeat, makes an
event: the log grows with changes, not with the probe rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, NamedTuple

from events.health import HealthObserved, HealthStatus, HealthWindow
from workers.health.fleet import LastObservation
from workers.health.probe import PROBE_TIMEOUT_SECONDS, ContainerSample

LATENCY_LIMIT_MS: Final = 1000.0
MEMORY_LIMIT_RATIO: Final = 0.9
STALE_INTERVALS: Final = 3
STOPPED_MESSAGE: Final = "stopped: the instance is stopped on purpose, nothing to probe"


@dataclass
class Window:
    started_at: datetime
    probes: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    restarts: int = 0
    oom_kills: int = 0
    peak_memory_bytes: int | None = None

    def summary(self) -> HealthWindow:
        ordered = sorted(self.latencies)
        return HealthWindow(
            started_at=self.started_at,
            probes=self.probes,
            failures=self.failures,
            latency_p50_ms=_percentile(ordered, 0.50),
            latency_p95_ms=_percentile(ordered, 0.95),
            latency_max_ms=ordered[-1] if ordered else None,
            restarts=self.restarts,
            oom_kills=self.oom_kills,
            peak_memory_bytes=self.peak_memory_bytes,
        )


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least `q` of the values at or below it."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Tracker:
    """One instance: its last recorded status and stream version, the window since, and the
    container's restart count and OOM flag as last seen (to count new restarts)."""

    status: HealthStatus
    recorded_at: datetime | None
    version: int
    window: Window
    seen_at: datetime | None = None
    container: str | None = None
    restart_count: int | None = None
    oom_killed: bool = False


def restore(last: LastObservation | None, now: datetime) -> Tracker:
    """A tracker that carries on from the last recorded observation, so that an observer
    restart is not taken for a change of status."""
    if last is None:
        return Tracker(status="unknown", recorded_at=None, version=0, window=Window(now))
    return Tracker(
        status=last.status,
        recorded_at=last.last_checked_at,
        version=last.version,
        window=Window(last.last_checked_at),
        seen_at=last.last_checked_at if last.container_state is not None else None,
        restart_count=last.restart_count,
        oom_killed=bool(last.oom_killed),
    )


class Reading(NamedTuple):
    """What one cycle concluded about an instance. `heartbeat`: whether an unchanged status
    may still be recorded for freshness (not when nobody could look at the instance)."""

    status: HealthStatus
    message: str
    sample: ContainerSample | None
    heartbeat: bool


def take_sample(tracker: Tracker, sample: ContainerSample, at: datetime) -> Reading:
    """Count the sample into the window, move the baselines on, and judge it."""
    window = tracker.window
    window.probes += 1
    if not _probe_passed(sample):
        window.failures += 1
    if sample.http_status is not None and sample.response_time_ms is not None:
        window.latencies.append(sample.response_time_ms)
    restarts = _new_restarts(tracker, sample)
    window.restarts += restarts
    if sample.oom_killed and (restarts or not tracker.oom_killed):
        window.oom_kills += 1
    if sample.memory_bytes is not None:
        window.peak_memory_bytes = max(window.peak_memory_bytes or 0, sample.memory_bytes)
    tracker.container, tracker.seen_at = sample.container, at
    if sample.restart_count is not None:
        tracker.restart_count = sample.restart_count
    tracker.oom_killed = bool(sample.oom_killed)
    status, message = judge(sample, window)
    return Reading(status, message, sample, heartbeat=True)


def judge(sample: ContainerSample, window: Window) -> tuple[HealthStatus, str]:
    state, code, took = sample.container_state, sample.http_status, sample.response_time_ms
    if state == "missing":
        return "unhealthy", f"container {sample.container} does not exist"
    if state != "running":
        return "unhealthy", f"container {sample.container} is {state}"
    if code is None:
        return "unhealthy", f"/web/health did not answer within {PROBE_TIMEOUT_SECONDS} s"
    if not 200 <= code < 300:
        return "unhealthy", f"/web/health answered HTTP {code}"
    problems = []
    if took is not None and took > LATENCY_LIMIT_MS:
        problems.append(f"slow: /web/health took {took:,.0f} ms")
    if window.restarts:
        problems.append(f"restarted {window.restarts}x since {window.started_at:%H:%M:%S}Z")
    if window.oom_kills:
        problems.append("killed for lack of memory (OOM)")
    used, limit = sample.memory_bytes, sample.memory_limit_bytes
    if used is not None and limit and used > MEMORY_LIMIT_RATIO * limit:
        problems.append(f"memory at {100 * used / limit:.0f}% of its limit")
    if sample.health == "unhealthy":
        problems.append("Docker's healthcheck reports unhealthy")
    if problems:
        return "degraded", "; ".join(problems)
    timing = "" if took is None else f" in {took:,.0f} ms"
    return "healthy", f"/web/health answered{timing}"


def unseen(tracker: Tracker, why: str, at: datetime, interval: float) -> Reading | None:
    """No sample this cycle: keep the status for up to 3 intervals after the last sample
    (None: nothing to record), then it is unknown."""
    if tracker.seen_at is not None:
        quiet = (at - tracker.seen_at).total_seconds()
        if quiet <= STALE_INTERVALS * interval:
            return None
        why = f"not observed for {quiet:.0f} s: {why}"
    return Reading("unknown", why, None, heartbeat=False)


def stopped() -> Reading:
    return Reading("unknown", STOPPED_MESSAGE, None, heartbeat=True)


def due(tracker: Tracker, reading: Reading, at: datetime, heartbeat: float) -> bool:
    if tracker.recorded_at is None or reading.status != tracker.status:
        return True
    return reading.heartbeat and (at - tracker.recorded_at).total_seconds() >= heartbeat


def observation(
    tracker: Tracker, instance_id: str, server_id: str, reading: Reading, at: datetime
) -> HealthObserved:
    s = reading.sample
    return HealthObserved(
        instance_id=instance_id,
        server_id=server_id,
        status=reading.status,
        container_state=s.container_state if s else None,
        http_status=s.http_status if s else None,
        response_time_ms=s.response_time_ms if s else None,
        restart_count=s.restart_count if s else None,
        oom_killed=s.oom_killed if s else None,
        memory_bytes=s.memory_bytes if s else None,
        memory_limit_bytes=s.memory_limit_bytes if s else None,
        cpu_percent=s.cpu_percent if s else None,
        message=reading.message,
        observed_at=at,
        window=tracker.window.summary(),
    )


def recorded(tracker: Tracker, event: HealthObserved, version: int) -> None:
    """The event is in the log: it is the new baseline, and a new window starts."""
    tracker.status, tracker.recorded_at, tracker.version = event.status, event.observed_at, version
    tracker.window = Window(event.observed_at)


def _probe_passed(sample: ContainerSample) -> bool:
    code = sample.http_status
    return sample.container_state == "running" and code is not None and 200 <= code < 300


def _new_restarts(tracker: Tracker, sample: ContainerSample) -> int:
    """Restarts since the last sample of the same container; a new container (another
    colour, or recreated) starts a new count."""
    now, before = sample.restart_count, tracker.restart_count
    if now is None or before is None or now < before:
        return 0
    if tracker.container is not None and tracker.container != sample.container:
        return 0
    return now - before
