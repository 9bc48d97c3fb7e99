"""Minting HS256 tokens with the configured secret (development, the CLI, the benchmark)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt

from odoofleet.settings import Settings


class CannotMint(ValueError):
    """Tokens can only be minted with a shared secret (HS256)."""


def mint_token(
    settings: Settings,
    *,
    org: str,
    sub: str,
    permissions: Sequence[str],
    ttl_seconds: float,
    name: str | None = None,
) -> str:
    if settings.jwt_algorithm != "HS256" or not settings.jwt_secret:
        raise CannotMint("minting needs ODOOFLEET_JWT_SECRET with the HS256 algorithm")
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": sub,
        "org": org,
        "permissions": list(permissions),
        "iat": now,
        "exp": now + int(ttl_seconds),
    }
    if name:
        claims["name"] = name
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
