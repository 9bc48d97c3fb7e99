"""`odoofleet audit`: the audit trail with the filters of `GET /api/audit-logs`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from rich.console import Console
from rich.table import Table

from events.pool import open_pool
from odoofleet.settings import Settings
from projections.audit import RESOURCE_TYPES, AuditEntry, AuditFilter, search_audit
from projections.runtime.reader import Reader

_PAGE: Final = 500
_COLUMNS: Final = tuple(f.name for f in msgspec.structs.fields(AuditEntry))


def register(commands: Any) -> None:
    cmd = commands.add_parser("audit", help="search the audit trail")
    cmd.add_argument("--org", help="only this organization (default: every one)")
    cmd.add_argument("--resource-type", choices=sorted(RESOURCE_TYPES))
    cmd.add_argument("--resource-id")
    cmd.add_argument("--action", help="e.g. instance.created")
    cmd.add_argument("--user", help="user id")
    cmd.add_argument("--since", type=_moment, help="from this date or time (inclusive)")
    cmd.add_argument("--until", type=_end, help="up to this date or time (inclusive)")
    cmd.add_argument("--limit", type=int, default=None, help="at most this many, newest first")
    cmd.add_argument("--format", choices=("table", "json", "csv"), default="table")
    cmd.set_defaults(run=run_audit)


def _moment(text: str) -> datetime:
    """An ISO date or date-time; times without a zone are UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _end(text: str) -> datetime:
    """A bare date means up to the end of that day."""
    moment = _moment(text)
    if len(text) == len("2026-01-01"):
        return moment + timedelta(days=1, microseconds=-1)
    return moment


async def _entries(
    conn: Reader, org: str | None, search: AuditFilter, limit: int | None
) -> AsyncIterator[AuditEntry]:
    page, seen = 1, 0
    while True:
        found, _ = await search_audit(conn, org, search, page, _PAGE)
        for entry in found:
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield entry
        if len(found) < _PAGE:
            return
        page += 1


def run_audit(settings: Settings, args: argparse.Namespace) -> int:
    search = AuditFilter(
        resource_type=RESOURCE_TYPES[args.resource_type] if args.resource_type else None,
        resource_id=args.resource_id,
        action=args.action,
        user_id=args.user,
        start_date=args.since,
        end_date=args.until,
    )

    async def main() -> list[AuditEntry]:
        pool = await open_pool(settings.database_url, max_size=1)
        try:
            return [entry async for entry in _entries(pool, args.org, search, args.limit)]
        finally:
            await pool.close()

    entries = asyncio.run(main())
    if args.format == "json":
        print(msgspec.json.encode(entries).decode())
    elif args.format == "csv":
        _write_csv(entries)
    else:
        Console().print(_table(entries))
    return 0


def _write_csv(entries: list[AuditEntry]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(_COLUMNS)
    for entry in entries:
        values = msgspec.to_builtins(entry)
        writer.writerow(
            [
                msgspec.json.encode(v).decode() if isinstance(v, dict) else v
                for v in (values[name] for name in _COLUMNS)
            ]
        )


def _table(entries: list[AuditEntry]) -> Table:
    table = Table()
    for column in ("time", "action", "resource", "user", "ip"):
        table.add_column(column, no_wrap=True)
    table.add_column("changes", overflow="fold")
    for e in entries:
        table.add_row(
            f"{e.created_at:%Y-%m-%d %H:%M:%S}",
            e.action,
            f"{e.resource_type} {e.resource_name or e.resource_id}",
            e.user_name,
            e.ip_address or "",
            _changes(e),
        )
    return table


def _changes(entry: AuditEntry) -> str:
    if entry.before_state is None:
        return "(new)"
    if entry.after_state is None:
        return "(gone)"
    before = entry.before_state
    return ", ".join(
        f"{name}: {_short(before.get(name))} → {_short(value)}"
        for name, value in entry.after_state.items()
    )


def _short(value: Any) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 40 else text[:39] + "…"
