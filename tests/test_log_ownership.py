"""events/ owns the log: no SQL over the `events` table anywhere else in the packages, so the
xmin / (tx_id, position) reading rule lives in one place (events/store.py, events/log_reads.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_EVENTS = ("commands", "projections", "api", "workers", "odoofleet")

# A statement naming the table (`FROM events`, `JOIN events e`, `INSERT INTO events`, ...); not
# the module (`from events.store import`, `from events import registry`).
SQL_OVER_EVENTS = re.compile(
    r"\b(?:from|join|into|update|truncate|table)\s+events\b(?!\.|\s+import\b)", re.IGNORECASE
)


@pytest.mark.parametrize(
    ("line", "is_sql"),
    [
        ("SELECT count(*) FROM events WHERE position > %s", True),
        ('    b" FROM checkpoints c LEFT JOIN events e ON (e.tx_id, e.position)"', True),
        ("select 1 from events x", True),
        ("INSERT INTO events (stream_id) VALUES (%s)", True),
        ("from events.store import EventStore", False),
        ("from events import registry", False),
        ("SELECT * FROM events_slug_reservations", False),
        ("# the events of one stream", False),
    ],
)
def test_the_pattern_tells_sql_over_the_events_table_from_imports(line: str, is_sql: bool):
    assert bool(SQL_OVER_EVENTS.search(line)) is is_sql


def test_no_package_but_events_has_sql_over_the_events_table():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in OUTSIDE_EVENTS
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SQL_OVER_EVENTS.search(line)
    ]

    assert found == [], "read the log through events.log_reads or EventStore:\n" + "\n".join(found)
