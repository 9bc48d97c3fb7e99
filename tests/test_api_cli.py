"""`odoofleet token` and `odoofleet serve`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import httpx
import jwt
import pytest
from infra import free_port
from waiting import eventually

from odoofleet import cli_api
from odoofleet.settings import Settings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_api.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_token_prints_a_token_the_api_accepts(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(
        "token", "--org", "acme", "--sub", "u1", "--permissions", "view:audit", "--ttl", "2h"
    )

    assert cli_api.run_token(settings, args) == 0

    claims = jwt.decode(capsys.readouterr().out.strip(), settings.jwt_secret, algorithms=["HS256"])
    assert (claims["org"], claims["sub"], claims["permissions"]) == ("acme", "u1", ["view:audit"])
    assert 7190 <= claims["exp"] - time.time() <= 7200


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("7d", 604800), ("5", 5)]
)
def test_ttl_takes_a_unit(text: str, seconds: int) -> None:
    assert cli_api.duration(text) == seconds


def test_a_bad_ttl_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse("token", "--org", "a", "--sub", "b", "--ttl", "soon")


async def test_serve_runs_the_api(settings: Settings) -> None:
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "ODOOFLEET_JWT_SECRET": settings.jwt_secret,
        "ODOOFLEET_SECRET_KEY": settings.secret_key,
    }
    script = (
        "import argparse, sys\n"
        "from odoofleet import cli_api\n"
        "from odoofleet.settings import load_settings\n"
        "parser = argparse.ArgumentParser()\n"
        "cli_api.register(parser.add_subparsers())\n"
        "args = parser.parse_args(sys.argv[1:])\n"
        "sys.exit(args.run(load_settings(), args))\n"
    )
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", script, "serve", "--port", str(port)),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=20, message="serve answers /readyz")
            assert (await client.get("/api/instances")).status_code == 401
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
