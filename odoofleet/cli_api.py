"""`odoofleet serve` (the HTTP API), `odoofleet token` (mint a development JWT) and
`odoofleet token revoke` (refuse a token by its `jti`)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from typing import Any

import psycopg
import uvicorn

from api.app import create_app
from api.auth import AuthConfigError
from api.revocations import revoke
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

    token = commands.add_parser(
        "token",
        help="mint a JWT with the configured secret (HS256); `token revoke JTI` refuses one",
    )
    # Checked in run_token rather than by argparse, so that `token revoke` needs neither.
    token.add_argument("--org", help="organization id (the `org` claim); required to mint")
    token.add_argument("--sub", help="user id (the `sub` claim); required to mint")
    token.add_argument("--name", help="display name (the `name` claim)")
    token.add_argument(
        "--permissions",
        default="manage:instances,manage:servers,view:audit",
        help="comma-separated, e.g. manage:instances,view:servers",
    )
    token.add_argument(
        "--ttl",
        type=duration,
        default="1h",
        help="lifetime: 90s, 30m, 1h; at most ODOOFLEET_JWT_MAX_LIFETIME (default 24h)",
    )
    token.set_defaults(run=run_token)
    revoking = token.add_subparsers(title="token commands", metavar="{revoke}")
    revoked = revoking.add_parser("revoke", help="refuse a token from now on, by its jti")
    revoked.add_argument("jti", help="the token's `jti` (printed when it was minted)")
    revoked.set_defaults(run=run_revoke)


def duration(text: str) -> int:
    found = _DURATION.fullmatch(text.strip())
    if found is None or int(found.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h, 7d)")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    try:
        app = create_app(settings.for_api())
    except (AuthConfigError, SecretKeyMissing) as e:
        print(f"odoofleet serve: {e}")
        return 2
    # Logging is configured by the CLI already (odoofleet.logs); uvicorn keeps to it.
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, proxy_headers=False)
    return 0


def run_token(settings: Settings, args: argparse.Namespace) -> int:
    if not args.org or not args.sub:
        print("odoofleet token: --org and --sub are required to mint a token")
        return 2
    permissions = [p.strip() for p in args.permissions.split(",") if p.strip()]
    token_id = str(uuid.uuid4())
    try:
        token = mint_token(
            settings.for_api(),
            org=args.org,
            sub=args.sub,
            permissions=permissions,
            ttl_seconds=args.ttl,
            name=args.name,
            token_id=token_id,
        )
    except CannotMint as e:
        print(f"odoofleet token: {e}")
        return 2
    print(token)
    # On stderr, so that `$(odoofleet token ...)` is the token alone.
    print(f"jti: {token_id} (odoofleet token revoke {token_id})", file=sys.stderr)
    return 0


def run_revoke(settings: Settings, args: argparse.Namespace) -> int:
    jti = args.jti.strip()
    if not 1 <= len(jti) <= 200 or not jti.isprintable():
        print("odoofleet token revoke: the jti must be 1 to 200 printable characters")
        return 2

    async def revoking() -> None:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url, autocommit=True
        ) as conn:
            await revoke(conn, jti, settings.jwt_max_lifetime)

    try:
        asyncio.run(revoking())
    except psycopg.Error as e:
        print(f"odoofleet token revoke: {e}")
        return 1
    print(f"revoked {jti}: every API process refuses it within a few seconds")
    return 0
