"""`odoofleet project`, `projections status|rebuild` and `events replay|republish`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from events.catalog import build_registry
from events.jetstream import connect_nats, ensure_stream
from events.log_reads import count_range
from events.pool import open_pool
from events.republish import republish
from odoofleet.runtime import run_until_signalled
from odoofleet.settings import Settings
from projections.catalog import NAMES, build_projections, select
from projections.run import run_projections
from projections.runtime.errors import PoisonEvent
from projections.runtime.rebuild import Progress as RebuildProgress
from projections.runtime.rebuild import RebuildRunning, rebuild
from projections.runtime.replay import replay
from projections.runtime.report import ProjectionReport, report


def register(commands: Any) -> None:
    cmd = commands.add_parser("project", help="run the projectors (leader or standby)")
    cmd.add_argument(
        "--projection", action="append", choices=NAMES, help="only this one (repeatable)"
    )
    cmd.set_defaults(run=run_project)

    projections = commands.add_parser("projections", help="inspect and rebuild read models")
    sub = projections.add_subparsers(dest="projections_command", required=True, metavar="ACTION")
    status = sub.add_parser("status", help="checkpoint, lag, state and last error of each")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(run=run_status)
    build = sub.add_parser("rebuild", help="rebuild into new tables and swap them in live")
    which = build.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", choices=NAMES, help="the projection to rebuild")
    which.add_argument("--all", action="store_true", help="rebuild every projection")
    build.add_argument("--batch-size", type=int, default=5000)
    build.set_defaults(run=run_rebuild)


def register_events_actions(events_subparsers: Any) -> None:
    """`events replay` and `events republish`, added to the `events` command's actions."""
    again = events_subparsers.add_parser(
        "replay", help="re-apply a range of the log to a projection (repair after a fix)"
    )
    again.add_argument("--projection", required=True, choices=NAMES)
    again.add_argument("--from", dest="start", type=int, default=1, metavar="POSITION")
    again.add_argument("--to", dest="end", type=int, default=None, metavar="POSITION")
    again.set_defaults(run=run_replay)
    send = events_subparsers.add_parser("republish", help="publish a range to JetStream again")
    send.add_argument("--from", dest="start", type=int, required=True, metavar="POSITION")
    send.add_argument("--to", dest="end", type=int, default=None, metavar="POSITION")
    send.set_defaults(run=run_republish)


def run_project(settings: Settings, args: argparse.Namespace) -> int:
    names = tuple(args.projection) if args.projection else None

    async def main(stop: asyncio.Event) -> None:
        pool = await open_pool(settings.database_url, max_size=len(names or NAMES) + 2)
        try:
            await run_projections(pool, settings.database_url, stop, names)
        finally:
            await pool.close()

    return run_until_signalled(main)


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    async def main() -> list[ProjectionReport]:
        pool = await open_pool(settings.database_url, max_size=1)
        try:
            async with pool.connection() as conn:
                return [await report(conn, name) for name in NAMES]
        finally:
            await pool.close()

    reports = asyncio.run(main())
    if args.format == "json":
        print(msgspec.json.encode(reports).decode())
    else:
        Console().print(_status_table(reports))
    return 1 if any(r.state == "failed" for r in reports) else 0


def _status_table(reports: list[ProjectionReport]) -> Table:
    table = Table()
    for column in ("projection", "state", "position", "lag", "lag (s)", "leader", "standbys"):
        table.add_column(column, no_wrap=True)
    table.add_column("last error", overflow="fold")
    colours = {"running": "green", "standby": "yellow", "stopped": "dim", "failed": "bold red"}
    for r in reports:
        table.add_row(
            r.name,
            Text(r.state, style=colours[r.state]),
            str(r.checkpoint.position),
            f"{r.lag_events:,}",
            f"{r.lag_seconds:.1f}",
            r.leader or "-",
            str(r.standbys),
            r.last_error or "",
        )
    return table


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {task.fields.get('unit', '')}/s")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeRemainingColumn(),
    )


def run_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    names = NAMES if args.all else (args.name,)
    projections = select(build_projections(build_registry()), names)

    async def main() -> None:
        pool = await open_pool(settings.database_url, max_size=2)
        try:
            with _progress() as bar:
                for projection in projections:
                    task = bar.add_task(projection.name, unit="events", total=None)

                    def show(p: RebuildProgress, task: Any = task) -> None:
                        description = f"{p.projection} ({p.phase})"
                        bar.update(task, description=description, completed=p.done, total=p.total)

                    await rebuild(pool, projection, batch_size=args.batch_size, on_progress=show)
        finally:
            await pool.close()

    try:
        asyncio.run(main())
    except (RebuildRunning, PoisonEvent) as e:
        print(f"odoofleet: rebuild failed: {e}")
        return 1
    return 0


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    (projection,) = select(build_projections(build_registry()), (args.projection,))

    async def main() -> int:
        pool = await open_pool(settings.database_url, max_size=1)
        try:
            with _progress() as bar:
                task = bar.add_task(f"replay {projection.name}", unit="streams", total=None)
                return await replay(
                    pool,
                    projection,
                    start=args.start,
                    end=args.end,
                    on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        finally:
            await pool.close()

    applied = asyncio.run(main())
    print(f"replayed {applied:,} events into {projection.name}")
    return 0


def run_republish(settings: Settings, args: argparse.Namespace) -> int:
    async def main() -> tuple[int, int]:
        pool = await open_pool(settings.database_url, max_size=1)
        nc = await connect_nats(settings.nats_url, "odoofleet-republish")
        try:
            js = nc.jetstream()
            await ensure_stream(js, settings.nats_stream, settings.subject_prefix)
            async with pool.connection() as conn:
                total = await count_range(conn, args.start, args.end)
            with _progress() as bar:
                task = bar.add_task("republish", unit="events", total=total)
                return await republish(
                    pool,
                    js,
                    stream=settings.nats_stream,
                    subject_prefix=settings.subject_prefix,
                    start=args.start,
                    end=args.end,
                    on_progress=lambda _: bar.advance(task),
                )
        finally:
            await nc.close()
            await pool.close()

    published, duplicates = asyncio.run(main())
    print(f"republished {published:,} events ({duplicates:,} dropped by JetStream as duplicates)")
    return 0
