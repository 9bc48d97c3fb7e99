"""`odoofleet dev`: the one-command start on a laptop."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
from pathlib import Path
from typing import Any

import msgspec

from api.tokens import mint_token
from odoofleet.dev import DEV_ORG, DevOptions, DevServices, SandboxInfo, run_dev
from odoofleet.logs import configure_logging
from odoofleet.runtime import run_until_signalled
from odoofleet.sandbox.server import local_docker_problem
from odoofleet.settings import Settings

DEV_PERMISSIONS = (
    "manage:instances",
    "manage:servers",
    "manage:audit",
    "manage:api-keys",
    "manage:webhooks",
)


def register(commands: Any) -> None:
    dev = commands.add_parser(
        "dev", help="run everything in one process (embedded PostgreSQL and NATS if unset)"
    )
    dev.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    dev.add_argument("--data-dir", type=Path, default=Path(".odoofleet"), help="kept between runs")
    dev.add_argument("--fresh", action="store_true", help="wipe the data directory first")
    dev.add_argument(
        "--sandbox-server",
        action="store_true",
        help="also start a simulated server (SSH + a stand-in docker) and register it",
    )
    dev.add_argument(
        "--local-docker",
        action="store_true",
        help="also register this machine as a server: SSH in-process, this machine's real "
        "docker and Compose v2 (hosts real Odoo locally)",
    )
    dev.add_argument(
        "--verbose", action="store_true", help="log every request and INFO (default: warnings)"
    )
    dev.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    options = DevOptions(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir.resolve(),
        fresh=args.fresh,
        sandbox_server=args.sandbox_server,
        local_docker=args.local_docker,
        verbose=args.verbose,
    )
    if (problem := port_problem(args.host, args.port)) is not None:
        print(f"odoofleet dev: {problem}", file=sys.stderr)
        return 2
    if args.local_docker and (problem := local_docker_problem()) is not None:
        print(f"odoofleet dev --local-docker: {problem}", file=sys.stderr)
        return 2
    given = {k for k, v in os.environ.items() if v}
    services = DevServices(options, settings, given)
    try:
        effective = with_sandbox_acme(services.start(), options, given)
        configure_logging(effective)

        async def main(stop: asyncio.Event) -> None:
            await run_dev(effective, options, stop, lambda info: banner(effective, options, info))

        return run_until_signalled(main)
    finally:
        services.stop()
        print("odoofleet dev stopped.", flush=True)


def with_sandbox_acme(settings: Settings, options: DevOptions, given: set[str]) -> Settings:
    """With --sandbox-server certificates come from the self-signed stand-in CA (no ACME CA
    can reach a sandbox's `*.localhost` names), unless ODOOFLEET_ACME_DIRECTORY_URL says
    otherwise."""
    if not options.sandbox_server or "ODOOFLEET_ACME_DIRECTORY_URL" in given:
        return settings
    return msgspec.structs.replace(settings, acme_directory_url="self-signed")


def port_problem(host: str, port: int) -> str | None:
    """Why the API could not listen on host:port, found before anything starts."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn binds: SO_REUSEADDR, so a port left in TIME_WAIT is not taken for used.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use (another odoofleet dev?); try --port"
            return f"cannot listen on {host}:{port}: {e.strerror}"
    return None


def banner(settings: Settings, options: DevOptions, sandbox: SandboxInfo | None) -> None:
    url = f"http://{options.host}:{options.port}"
    token = mint_token(
        settings.for_api(),
        org=DEV_ORG,
        sub="dev",
        name="Developer",
        permissions=DEV_PERMISSIONS,
        ttl_seconds=settings.jwt_max_lifetime,
    )
    # The token rides in the fragment: browsers never send it, so no server log sees it.
    lines = [
        "",
        f"odoofleet is running at {url}",
        f"  console:  {url}/#token={token}",
        f"  API docs: {url}/schema",
        f"  token:    {token}",
    ]
    if sandbox is not None:
        lines.append(f"  server:   {sandbox.name} at {sandbox.address} (id {sandbox.server_id})")
    lines += [
        "Ctrl-C stops everything." + ("" if options.verbose else " --verbose logs every request."),
        "",
    ]
    print("\n".join(lines), flush=True)
