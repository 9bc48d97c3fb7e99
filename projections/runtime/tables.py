"""Rows of a read-model table, one per stream, written in bulk.

A batch's rows go to PostgreSQL as one JSON array (`json_populate_recordset`): one
statement per batch instead of one per row, and the column list comes from the row Struct.
Lists of keys go binary (`%b`): psycopg quotes each element of a text-format array through a
regular expression, a visible share of a rebuild's CPU.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final, Generic

import msgspec
from psycopg import AsyncConnection

from projections.runtime.fold import R

_encoder: Final = msgspec.json.Encoder()


def _upsert_sql(table: str, key: str, columns: Iterable[str]) -> bytes:
    """`INSERT … ON CONFLICT (key) DO UPDATE` of `columns` from a JSON array parameter;
    columns of the table that are not listed keep their value."""
    names = list(columns)
    listed = ", ".join(names)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c != key)
    return (
        f"INSERT INTO {table} ({listed}) SELECT {listed}"
        f" FROM json_populate_recordset(NULL::{table}, %s::json)"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
    ).encode()


def as_json(values: Any) -> str:
    return _encoder.encode(values).decode()


class TableRows(Generic[R]):
    """A table keyed by the id in its stream id (`instance-<id>` → `id`)."""

    def __init__(
        self,
        table: str,
        key: str,
        stream_type: str,
        row_type: type[R],
        exclude: Collection[str] = (),
    ) -> None:
        self.table = table
        self._key = key
        self._prefix = f"{stream_type}-"
        columns = [f.name for f in msgspec.structs.fields(row_type) if f.name not in exclude]
        self._upsert = _upsert_sql(table, key, columns)
        self._select = (
            f"SELECT coalesce(json_agg(t), '[]')::text FROM {table} t WHERE {key} = ANY(%b)"
        ).encode()
        self._delete = f"DELETE FROM {table} WHERE {key} = ANY(%b)".encode()
        self._decoder = msgspec.json.Decoder(list[row_type])  # type: ignore[valid-type]

    def _ids(self, stream_ids: Iterable[str]) -> list[str]:
        return [stream_id.removeprefix(self._prefix) for stream_id in stream_ids]

    async def load(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> dict[str, R]:
        # Never prepared: a connection kept the generic plan chosen while the table was small
        # (a scan of it), and each batch's load grew with the table (0.7 -> 13 ms by a few
        # thousand instances, bench/README.md). Planned with the keys at hand, it uses the key.
        cur = await conn.execute(self._select, (self._ids(stream_ids),), prepare=False)
        row = await cur.fetchone()
        found: list[R] = self._decoder.decode(row[0]) if row is not None else []
        return {self._prefix + getattr(item, self._key): item for item in found}

    async def save(self, conn: AsyncConnection[Any], rows: Mapping[str, R | None]) -> None:
        kept = [row for row in rows.values() if row is not None]
        gone = [stream_id for stream_id, row in rows.items() if row is None]
        if kept:
            await conn.execute(self._upsert, (as_json(kept),))
        if gone:
            await conn.execute(self._delete, (self._ids(gone),))

    async def forget(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> None:
        await conn.execute(self._delete, (self._ids(stream_ids),))
