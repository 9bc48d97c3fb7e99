"""The `odoofleet` command line: each area registers its own subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from odoofleet.logs import configure_logging, quiet_known_warnings

quiet_known_warnings()  # before the areas load asyncssh and pgserver, which warn as they load

from odoofleet import (  # noqa: E402
    cli_api,
    cli_audit,
    cli_dev,
    cli_events,
    cli_mcp,
    cli_projections,
    cli_work,
)
from odoofleet.settings import SettingsError, load_settings  # noqa: E402

AREAS = (cli_events, cli_projections, cli_audit, cli_api, cli_work, cli_dev, cli_mcp)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odoofleet", description="Host Odoo on your own servers: the control plane."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        area.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as e:
        print(f"odoofleet: {e}")
        return 2
    configure_logging(settings)
    try:
        code: int = args.run(settings, args)
    except KeyboardInterrupt:
        return 130
    return code
