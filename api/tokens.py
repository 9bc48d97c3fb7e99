"""Minting HS256 tokens with the configured secret (development, the CLI, the benchmark)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import jwt

from api.config import ApiConfig


class CannotMint(ValueError):
    """Tokens can only be minted with a shared secret (HS256), for at most the maximum
    lifetime the API accepts."""


def mint_token(
    settings: ApiConfig,
    *,
    org: str,
    sub: str,
    permissions: Sequence[str],
    ttl_seconds: float,
    name: str | None = None,
    token_id: str | None = None,
) -> str:
    """A signed token; its `jti` is `token_id`, or a new random one (`odoofleet token
    revoke` takes it)."""
    if settings.jwt_algorithm != "HS256" or not settings.jwt_secret:
        raise CannotMint("minting needs ODOOFLEET_JWT_SECRET with the HS256 algorithm")
    if not 0 < ttl_seconds <= settings.jwt_max_lifetime:
        raise CannotMint(
            f"a token may live at most {settings.jwt_max_lifetime:g} seconds"
            " (ODOOFLEET_JWT_MAX_LIFETIME)"
        )
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": sub,
        "org": org,
        "permissions": list(permissions),
        "iat": now,
        "exp": now + int(ttl_seconds),
        "jti": token_id or str(uuid.uuid4()),
    }
    if name:
        claims["name"] = name
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
