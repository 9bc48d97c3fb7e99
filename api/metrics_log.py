"""Metrics read from PostgreSQL at scrape time, so they hold for every process of a
deployment (relay, projectors, workers), not only this API process."""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncConnection

from api.metrics_http import escape
from events.log_reads import last_position, reader_lags
from projections.runtime.rebuild import is_build_checkpoint

_OPERATIONS: Final = "SELECT type, status, count(*) FROM operations GROUP BY 1, 2 ORDER BY 1, 2"
# Saga steps of the last hour: each is one or a few SSH commands.
_STEPS: Final = (
    "SELECT s->>'name', count(*), coalesce(sum((s->>'duration_ms')::float) / 1000, 0)"
    " FROM operations o, jsonb_array_elements(o.steps) s"
    " WHERE o.started_at > now() - interval '1 hour'"
    " AND s->>'duration_ms' IS NOT NULL GROUP BY 1 ORDER BY 1"
)
# An open transaction holds back every log reader (events/store.py, the xmin rule).
# clock_timestamp, not now(): now() is this scrape's own transaction start, which a
# transaction begun a moment later would make a negative age.
_OLDEST_TX: Final = (
    "SELECT greatest(coalesce(extract(epoch FROM clock_timestamp() - min(xact_start)), 0), 0)"
    "::float8 FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()"
)


async def log_metrics(conn: AsyncConnection[Any]) -> list[str]:
    lines: list[str] = []
    events = await last_position(conn)
    lines += _metric("odoofleet_events_appended_total", "counter", "Events in the log.")
    lines.append(f"odoofleet_events_appended_total {events}")
    # Lag of each reader (relay, projections); a rebuild's checkpoint is no reader's.
    lag = [
        (r.reader, r.lag.events, r.lag.seconds)
        for r in await reader_lags(conn)
        if not is_build_checkpoint(r.reader)
    ]
    lines += _metric("odoofleet_reader_lag_events", "gauge", "Events not yet taken by a reader.")
    lines += [f'odoofleet_reader_lag_events{{reader="{escape(n)}"}} {c}' for n, c, _ in lag]
    lines += _metric(
        "odoofleet_reader_lag_seconds", "gauge", "Age of the oldest event a reader has not taken."
    )
    lines += [f'odoofleet_reader_lag_seconds{{reader="{escape(n)}"}} {s}' for n, _, s in lag]
    lines += _metric("odoofleet_saga_operations", "gauge", "Saga operations by type and outcome.")
    for kind, status, count in await (await conn.execute(_OPERATIONS)).fetchall():
        labels = f'type="{escape(kind)}",status="{escape(status)}"'
        lines.append(f"odoofleet_saga_operations{{{labels}}} {count}")
    lines += _metric(
        "odoofleet_saga_step_seconds", "summary", "Saga step (SSH command) time, last hour."
    )
    for step, count, total in await (await conn.execute(_STEPS)).fetchall():
        lines.append(f'odoofleet_saga_step_seconds_count{{step="{escape(step)}"}} {count}')
        lines.append(f'odoofleet_saga_step_seconds_sum{{step="{escape(step)}"}} {total}')
    (oldest,) = await (await conn.execute(_OLDEST_TX)).fetchone() or (0,)
    lines += _metric(
        "odoofleet_oldest_transaction_seconds", "gauge", "Age of the oldest open transaction."
    )
    lines.append(f"odoofleet_oldest_transaction_seconds {oldest:.3f}")
    return lines


def _metric(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
