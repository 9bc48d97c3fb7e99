"""`odoofleet serve` (the HTTP API) and `odoofleet token` (mint a development JWT)."""

from __future__ import annotations

import argparse
import re
from typing import Any

import uvicorn

from api.app import create_app
from api.auth import AuthConfigError
from api.tokens import CannotMint, mint_token
from events.secrets import SecretKeyMissing
from odoofleet.settings import Settings

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.set_defaults(run=run_serve)

    token = commands.add_parser("token", help="mint a JWT with the configured secret (HS256)")
    token.add_argument("--org", required=True, help="organization id (the `org` claim)")
    token.add_argument("--sub", required=True, help="user id (the `sub` claim)")
    token.add_argument("--name", help="display name (the `name` claim)")
    token.add_argument(
        "--permissions",
        default="manage:instances,manage:servers,view:audit",
        help="comma-separated, e.g. manage:instances,view:servers",
    )
    token.add_argument("--ttl", type=duration, default="1h", help="lifetime: 90s, 30m, 1h, 7d")
    token.set_defaults(run=run_token)


def duration(text: str) -> int:
    found = _DURATION.fullmatch(text.strip())
    if found is None or int(found.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h, 7d)")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    try:
        app = create_app(settings)
    except (AuthConfigError, SecretKeyMissing) as e:
        print(f"odoofleet serve: {e}")
        return 2
    # Logging is configured by the CLI already (odoofleet.logs); uvicorn keeps to it.
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, proxy_headers=False)
    return 0


def run_token(settings: Settings, args: argparse.Namespace) -> int:
    permissions = [p.strip() for p in args.permissions.split(",") if p.strip()]
    try:
        token = mint_token(
            settings,
            org=args.org,
            sub=args.sub,
            permissions=permissions,
            ttl_seconds=args.ttl,
            name=args.name,
        )
    except CannotMint as e:
        print(f"odoofleet token: {e}")
        return 2
    print(token)
    return 0
