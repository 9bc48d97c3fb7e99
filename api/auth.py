"""Bearer JWT authentication, organizations and permissions (API.md, "Auth and tenancy")."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any, Final

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from api.config import ApiConfig
from api.revocations import Revocations

_PERMISSION: Final = "permission"
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Unauthenticated(Exception):
    """No usable bearer token (→ 401 with `WWW-Authenticate: Bearer`)."""

    def __init__(self, reason: str, *, token_given: bool) -> None:
        self.reason = reason
        self.token_given = token_given
        super().__init__(reason)


class Forbidden(Exception):
    """A valid token without the permission an endpoint needs (→ 403)."""

    def __init__(self, permission: str) -> None:
        self.permission = permission
        super().__init__(f"this needs the {permission} permission")


class AuthConfigError(ValueError):
    """The settings do not give a usable key for the configured JWT algorithm."""


class Claims(msgspec.Struct, frozen=True):
    """The claims API.md requires. `permissions` is required too (an empty list is fine): a
    token without it was not minted for odoofleet. `iat` is required so that a token's
    lifetime can be bounded; `jti`, when given, is what `odoofleet token revoke` names."""

    sub: _Text
    org: _Text
    exp: float
    iat: float
    permissions: list[str]
    name: _Text | None = None
    jti: _Text | None = None


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: a user of one organization with a set of permissions."""

    user_id: str
    user_name: str
    org_id: str
    permissions: frozenset[str]
    token_id: str | None = None
    # An API key limited to some instances (api/api_keys.py); None: every instance.
    instance_ids: frozenset[str] | None = None
    # MCP controls of an API key (api/mcp): no write tools; a narrower set of instances.
    mcp_read_only: bool = False
    mcp_instance_ids: frozenset[str] | None = None

    def may(self, permission: str) -> bool:
        """`manage:<resource>` implies `view:<resource>`; `<verb>:instances` implies
        `<verb>:backups` (API.md, second wave)."""
        if permission in self.permissions:
            return True
        verb, _, resource = permission.partition(":")
        if resource == "backups" and self.may(f"{verb}:instances"):
            return True
        return verb == "view" and f"manage:{resource}" in self.permissions

    def reaches(self, instance_id: str) -> bool:
        """Whether the caller may see or touch this instance (an API key may be limited)."""
        return self.instance_ids is None or instance_id in self.instance_ids


class TokenVerifier:
    """Verifies tokens with the configured algorithm and key only: `none` and algorithm
    confusion (an HS256 token signed with a public key) are refused by construction.

    A verified token is remembered until it expires (checking a signature costs more than
    the rest of a small request); a token is its own cache key, so only the exact bytes that
    were verified are ever accepted without verifying them again. Whether it was revoked is
    asked on every request (`revocations`).

    A token may live at most `jwt_max_lifetime` seconds from its `iat` (which may not lie
    in the future): a signed `exp` in the year 9999 or at 1e300 made a token that never
    expires, one that no revocation list could hold for ever (issue 13).
    """

    def __init__(self, settings: ApiConfig, capacity: int = 4096) -> None:
        self._algorithm = settings.jwt_algorithm
        self._key = _verification_key(settings)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._max_lifetime = settings.jwt_max_lifetime
        self._capacity = capacity
        self._verified: dict[str, tuple[float, Principal]] = {}
        self.revocations = Revocations()

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and known[0] > time.time():
            return known[1]
        principal, expires = self._decode(token)
        if len(self._verified) >= self._capacity:
            self._verified.clear()
        self._verified[token] = (expires, principal)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat"], "verify_aud": self._audience is not None},
            )
            claims = msgspec.convert(payload, Claims)
        except jwt.ExpiredSignatureError as e:
            raise Unauthenticated("the token has expired", token_given=True) from e
        except (jwt.InvalidTokenError, msgspec.ValidationError) as e:
            raise Unauthenticated(f"invalid token: {e}", token_given=True) from e
        lifetime = claims.exp - claims.iat
        # Written so that NaN fails too.
        if not (math.isfinite(lifetime) and 0 < lifetime <= self._max_lifetime):
            raise Unauthenticated(
                f"invalid token: exp - iat must be at most {self._max_lifetime:g} seconds",
                token_given=True,
            )
        principal = Principal(
            user_id=claims.sub,
            user_name=claims.name or claims.sub,
            org_id=claims.org,
            permissions=frozenset(claims.permissions),
            token_id=claims.jti,
        )
        return principal, float(claims.exp)


def _verification_key(settings: ApiConfig) -> Any:
    if settings.jwt_algorithm == "HS256":
        if not settings.jwt_secret:
            raise AuthConfigError("ODOOFLEET_JWT_SECRET is needed for HS256")
        return settings.jwt_secret
    text = settings.jwt_public_key
    if not text:
        raise AuthConfigError(f"ODOOFLEET_JWT_PUBLIC_KEY is needed for {settings.jwt_algorithm}")
    try:
        pem = text if text.lstrip().startswith("-----BEGIN") else Path(text).read_text()
        key = load_pem_public_key(pem.encode())
    except (OSError, ValueError) as e:
        raise AuthConfigError(f"ODOOFLEET_JWT_PUBLIC_KEY is not a PEM public key: {e}") from e
    wanted = rsa.RSAPublicKey if settings.jwt_algorithm == "RS256" else ec.EllipticCurvePublicKey
    if not isinstance(key, wanted):
        raise AuthConfigError(f"the public key does not fit {settings.jwt_algorithm}")
    return key


class BearerAuthentication(AbstractAuthenticationMiddleware):
    """Sets `request.user` to the caller's Principal; every /api route passes through it."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier) -> None:
        super().__init__(app)
        self.verifier = verifier

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("a bearer token is required", token_given=False)
        if token.startswith("ofk_"):
            return await _api_key(connection, token)
        principal = self.verifier.verify(token)
        if principal.token_id is not None:
            pool = connection.app.state.services.pool
            if await self.verifier.revocations.is_revoked(principal.token_id, pool):
                raise Unauthenticated("the token has been revoked", token_given=True)
        # An /api route that forgot to declare its permission is closed to everyone.
        needed = connection.route_handler.opt.get(_PERMISSION, "undeclared")
        if not principal.may(needed):
            raise Forbidden(needed)
        return AuthenticationResult(user=principal, auth=token)


async def _api_key(
    connection: ASGIConnection[Any, Any, Any, Any], token: str
) -> AuthenticationResult:
    """An API key (api/api_keys.py): the same permission check, then its instance scope."""
    keys = connection.app.state.api_keys
    principal: Principal = await keys.authenticate(token)
    needed = connection.route_handler.opt.get(_PERMISSION, "undeclared")
    if not principal.may(needed):
        raise Forbidden(needed)
    keys.check_scope(principal, connection, needed)
    return AuthenticationResult(user=principal, auth=token)


def needs(permission: str) -> dict[str, str]:
    """Route options naming the permission an endpoint needs (→ 403 without it).

    BearerAuthentication checks it right after the token: cheaper than a guard, for which
    Litestar copies the route handler on every request.
    """
    return {_PERMISSION: permission}
