"""`odoofleet work`: the saga workers (server validation, provisioning, control, teardown,
redeploy) and the webhook deliveries, until SIGINT or SIGTERM. Run as many as you like: they
share the work."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from events.pool import open_pool
from odoofleet.logs import configure_logging
from odoofleet.runtime import run_until_signalled
from odoofleet.settings import Settings, SettingsError, load_settings
from workers.runtime.run import run_workers
from workers.server.layout import DEFAULT_ROOT
from workers.webhooks.run import run_webhooks


def register(commands: Any) -> None:
    cmd = commands.add_parser("work", help="run the saga workers that act on the servers")
    add_arguments(cmd)
    cmd.set_defaults(run=run_work)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", default=DEFAULT_ROOT, help=f"base directory on the servers ({DEFAULT_ROOT})"
    )
    parser.add_argument(
        "--ack-wait",
        type=float,
        default=30.0,
        help="seconds before a silent worker's message goes to another one (default 30)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="operations of each kind this process runs at once (default 4)",
    )
    parser.add_argument(
        "--no-health-observer",
        dest="observe_health",
        action="store_false",
        help="do not take part in health observation (another worker does it)",
    )


def run_work(settings: Settings, args: argparse.Namespace) -> int:
    async def main(stop: asyncio.Event) -> None:
        pool = await open_pool(settings.database_url, max_size=12 + 2 * args.concurrency)
        try:
            sagas = run_workers(
                settings.for_workers(),
                pool,
                stop,
                root=args.root,
                ack_wait=args.ack_wait,
                concurrency=args.concurrency,
                observe_health=args.observe_health,
            )
            await asyncio.gather(sagas, run_webhooks(settings.for_workers(), pool, stop))
        finally:
            await pool.close()

    return run_until_signalled(main)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m odoofleet.cli_work [options]`: the workers alone (a container's entry)."""
    parser = argparse.ArgumentParser(prog="odoofleet-work", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as e:
        print(f"odoofleet work: {e}")
        return 2
    configure_logging(settings)
    return run_work(settings, args)


if __name__ == "__main__":
    sys.exit(main())
