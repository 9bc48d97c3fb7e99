"""Token lifetime, revocation and the development token (issue 13, item 8)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import jwt
import msgspec
import pytest
from api_fixtures import CallerFactory
from waiting import eventually

from api.auth import TokenVerifier, Unauthenticated
from api.tokens import CannotMint, mint_token
from odoofleet import cli_api
from odoofleet.dev import DevOptions, DevServices
from odoofleet.settings import Settings, load_settings

HOUR = 3600


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_api.register(parser.add_subparsers())
    return parser.parse_args(argv)


def token(settings: Settings, **claims: object) -> str:
    now = int(time.time())
    base = {"sub": "alice", "org": "org-a", "permissions": [], "iat": now, "exp": now + 60}
    return jwt.encode(base | claims, settings.jwt_secret, algorithm="HS256")


def test_a_token_may_live_as_long_as_the_maximum_and_no_longer(settings: Settings) -> None:
    verifier = TokenVerifier(msgspec.structs.replace(settings, jwt_max_lifetime=HOUR).for_api())
    now = int(time.time())

    verifier.verify(token(settings, iat=now, exp=now + HOUR))
    with pytest.raises(Unauthenticated, match="exp - iat"):
        verifier.verify(token(settings, iat=now, exp=now + HOUR + 1))


def test_the_maximum_lifetime_is_a_day_unless_configured() -> None:
    assert load_settings({}).jwt_max_lifetime == 24 * HOUR
    assert load_settings({"ODOOFLEET_JWT_MAX_LIFETIME": "600"}).jwt_max_lifetime == 600


async def test_a_revoked_token_is_refused_within_seconds_and_others_still_work(
    caller: CallerFactory, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_api.run_token(settings, parse("token", "--org", "org-a", "--sub", "alice")) == 0
    printed = capsys.readouterr()
    revoked = await caller(token=printed.out.strip())
    jti = jwt.decode(printed.out.strip(), options={"verify_signature": False})["jti"]
    assert jti in printed.err
    other = await caller(org="org-a", sub="alice", jti="another-token")
    assert (await revoked.get("/api/instances")).status_code == 200

    # The command runs its own event loop, as it does from the shell.
    assert await asyncio.to_thread(cli_api.run_revoke, settings, parse("token", "revoke", jti)) == 0

    async def refused() -> bool:
        answer = await revoked.get("/api/instances")
        return answer.status_code == 401 and "revoked" in answer.json()["detail"]

    # The list is read again at most every 5 s (api/revocations.py).
    await eventually(refused, timeout=10, interval=0.2, message="the revoked token refused")
    assert (await other.get("/api/instances")).status_code == 200


def test_minting_refuses_a_lifetime_over_the_maximum(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("token", "--org", "a", "--sub", "b", "--ttl", "7d")

    assert cli_api.run_token(settings, args) == 2
    assert "at most 86400 seconds" in capsys.readouterr().out
    with pytest.raises(CannotMint):
        mint_token(settings.for_api(), org="a", sub="b", permissions=[], ttl_seconds=25 * HOUR)


def test_minting_needs_org_and_sub(settings: Settings) -> None:
    assert cli_api.run_token(settings, parse("token", "--org", "a")) == 2


def test_dev_signs_with_a_new_secret_at_each_start_and_keeps_none(
    settings: Settings, tmp_path: Path
) -> None:
    """The printed token of the last run stops working; nothing in the data directory can
    sign or be a token (it was a 7-day token signed with a secret kept there)."""
    (tmp_path / "jwt-secret").write_text("the secret an older odoofleet dev kept\n")
    base = msgspec.structs.replace(settings, jwt_secret="")
    options = DevOptions(
        host="127.0.0.1", port=8000, data_dir=tmp_path, fresh=False, sandbox_server=False
    )
    started = [DevServices(options, base, {"DATABASE_URL", "NATS_URL"}).start() for _ in range(2)]
    first, second = started
    minted = mint_token(first.for_api(), org="default", sub="dev", permissions=[],
                        ttl_seconds=first.jwt_max_lifetime)  # fmt: skip

    assert first.jwt_secret != second.jwt_secret
    with pytest.raises(Unauthenticated):
        TokenVerifier(second.for_api()).verify(minted)
    assert not (tmp_path / "jwt-secret").exists()
    kept = "\n".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert first.jwt_secret not in kept
    assert second.jwt_secret not in kept
