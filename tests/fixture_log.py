"""An event log and its read models as files: dumped from one database, loaded into another
(tests/fixtures/log_before_issue14.jsonl is one, made by the code before issue 14)."""

from __future__ import annotations

import json
from typing import Any, Final

from api_fixtures import Caller

from events.pool import Pool

FIXTURE_LOG: Final = "log_before_issue14.jsonl"
FIXTURE_READ_MODELS: Final = "read_models_before_issue14.json"
FIXTURE_WIRE: Final = "wire_before_issue14.json"
# Each read-model table and the column its rows are ordered by.
READ_MODELS: Final = {
    "instances": "id",
    "servers": "id",
    "operations": "id",
    "health": "instance_id",
    "audit_log": "position",
}
_COLUMNS: Final = (
    "position, stream_id, version, event_type, schema_version, data, metadata, event_id,"
    " recorded_at"
)


async def dump_log(pool: Pool) -> str:
    """Every event, one JSON object a line, in the order readers take them; the writing
    transaction's id is left out (a loading database numbers its own)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT json_build_object({_pairs()})::text FROM events"
            " ORDER BY tx_id, position".encode()
        )
        rows = await cur.fetchall()
    return "".join(f"{row[0]}\n" for row in rows)


def _pairs() -> str:
    return ", ".join(f"'{c.strip()}', {c.strip()}" for c in _COLUMNS.split(","))


async def load_log(pool: Pool, log: str) -> None:
    """The events of `log` appended in its order, in one transaction, keeping their
    positions, versions, ids and times, with the streams' versions to match."""
    lines = [line for line in log.splitlines() if line]
    async with pool.connection() as conn, conn.transaction():
        for line in lines:
            await conn.execute(
                f"INSERT INTO events ({_COLUMNS}) OVERRIDING SYSTEM VALUE"
                f" SELECT {_COLUMNS} FROM jsonb_populate_record(NULL::events, %s::jsonb)".encode(),
                (line,),
            )
        await conn.execute(
            "INSERT INTO streams (stream_id, version)"
            " SELECT stream_id, max(version) FROM events GROUP BY stream_id"
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('events', 'position'), max(position)) FROM events"
        )


async def dump_read_models(pool: Pool) -> str:
    """Every read-model table's rows, ordered, as one JSON document."""
    tables: dict[str, Any] = {}
    async with pool.connection() as conn:
        for table, key in READ_MODELS.items():
            cur = await conn.execute(
                f"SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY {key}), '[]')::text"
                f" FROM {table} t".encode()
            )
            row = await cur.fetchone()
            assert row is not None
            tables[table] = json.loads(row[0])
    return json.dumps(tables, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


async def dump_wire(callers: dict[str, Caller]) -> str:
    """What each caller's GET of the instance and server lists answers, as one JSON document."""
    answers: dict[str, Any] = {}
    for org, caller in callers.items():
        instances = await caller.get("/api/instances", params={"limit": 100})
        servers = await caller.get("/api/servers")
        assert instances.status_code == servers.status_code == 200
        answers[org] = {
            "instances": sorted(instances.json()["instances"], key=lambda i: i["id"]),
            "servers": sorted(servers.json()["servers"], key=lambda s: s["id"]),
        }
    return json.dumps(answers, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
