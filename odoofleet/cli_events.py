"""`odoofleet migrate`, `relay` and `events tail|show`."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import msgspec

from events.log_reads import newest
from events.migrate import migrate
from events.pool import open_pool
from events.relay import Relay, RelayConfig
from events.secrets import mask_sealed
from events.store import Checkpoint, EventStore, RecordedEvent
from events.wakeup import LogWakeup
from odoofleet.cli_projections import register_events_actions
from odoofleet.remote_events import RemoteRefused, follow
from odoofleet.runtime import run_until_signalled
from odoofleet.settings import Settings


def register(commands: Any) -> None:
    cmd = commands.add_parser("migrate", help="apply the database migrations (idempotent)")
    cmd.set_defaults(run=run_migrate)

    cmd = commands.add_parser("relay", help="publish the event log to NATS JetStream")
    cmd.set_defaults(run=run_relay)

    events = commands.add_parser("events", help="read the event log")
    sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    tail = sub.add_parser("tail", help="print the newest events")
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument(
        "--api", metavar="URL", help="follow a remote API's public event stream (with --follow)"
    )
    tail.add_argument(
        "--token", help="bearer token (JWT or API key) for --api; default $ODOOFLEET_API_TOKEN"
    )
    tail.set_defaults(run=run_tail)
    show = sub.add_parser("show", help="print one stream's events, secrets masked")
    show.add_argument("stream_id")
    show.set_defaults(run=run_show)
    register_events_actions(sub)


def run_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    applied = asyncio.run(migrate(settings.database_url))
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "nothing to do"
    print(f"migrations applied: {names}")
    return 0


def run_relay(settings: Settings, _args: argparse.Namespace) -> int:
    async def main(stop: asyncio.Event) -> None:
        pool = await open_pool(settings.database_url, max_size=2)
        config = RelayConfig(
            nats_url=settings.nats_url,
            stream=settings.nats_stream,
            subject_prefix=settings.subject_prefix,
        )
        try:
            await Relay(pool, settings.database_url, config).run(stop)
        finally:
            await pool.close()

    return run_until_signalled(main)


def format_event(event: RecordedEvent) -> str:
    data = mask_sealed(msgspec.json.decode(event.data))
    meta = msgspec.json.decode(event.metadata)
    actor = meta.get("actor", {}).get("id", "?")
    return (
        f"{event.position:>8} {event.recorded_at:%Y-%m-%d %H:%M:%S} "
        f"{event.stream_id}@{event.version} {event.event_type} by {actor} "
        f"{msgspec.json.encode(data).decode()}"
    )


def run_tail(settings: Settings, args: argparse.Namespace) -> int:
    if args.api is not None:
        return _tail_remote(args)

    async def main(stop: asyncio.Event) -> None:
        pool = await open_pool(settings.database_url, max_size=2)
        store = EventStore(pool)
        try:
            checkpoint = await _print_last(store, args.lines)
            if not args.follow:
                return
            wakeup = LogWakeup(settings.database_url)
            wakeup.start()
            try:
                while not stop.is_set():
                    for event in await store.read_all(checkpoint, limit=1000):
                        print(format_event(event), flush=True)
                        checkpoint = event.checkpoint
                    await wakeup.wait(1.0)
            finally:
                await wakeup.stop()
        finally:
            await pool.close()

    return run_until_signalled(main)


def _tail_remote(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("ODOOFLEET_API_TOKEN", "")
    if not args.follow or not token:
        print("--api needs --follow and a token (--token or ODOOFLEET_API_TOKEN)")
        return 2
    try:
        return run_until_signalled(lambda stop: follow(args.api, token, stop))
    except RemoteRefused as e:
        print(f"the API refused the event stream: {e}")
        return 1


async def _print_last(store: EventStore, count: int) -> Checkpoint:
    """Print the newest `count` events and return the checkpoint to follow from."""
    async with store.pool.connection() as conn:
        last = await newest(conn, count)
    for event in last:
        print(format_event(event))
    return last[-1].checkpoint if last else await store.head()


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    async def main() -> int:
        pool = await open_pool(settings.database_url, max_size=1)
        try:
            events = await EventStore(pool).read_stream(args.stream_id)
        finally:
            await pool.close()
        for event in events:
            print(format_event(event))
        if not events:
            print(f"no stream {args.stream_id!r}")
            return 1
        return 0

    return asyncio.run(main())
