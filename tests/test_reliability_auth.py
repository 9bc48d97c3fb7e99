"""Forged, stale, incomplete and malformed tokens: 401 with a Bearer challenge on every /api
endpoint, for an HS256 deployment and for an RS256 one (issuer and audience configured).

tests/test_api_auth.py covers a few of these on one endpoint; here every attack meets every
endpoint the OpenAPI document lists, beside a control token that is accepted everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import httpx
import jwt
import msgspec
import pytest
from api_fixtures import TEST_HOST_PORTS, client_of, serving
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar import Litestar
from waiting import eventually

from api.app import create_app
from events.pool import Pool
from odoofleet.settings import Settings

ISSUER: Final = "https://idp.example"
AUDIENCE: Final = "odoofleet"
SOME_ID: Final = str(uuid.UUID(int=42))
HOUR: Final = 3600
# Keys generated once per run: RSA key generation costs about a tenth of a second each.
RSA_KEY: Final = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY: Final = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY: Final = ec.generate_private_key(ec.SECP256R1())


class Deployment(msgspec.Struct, frozen=True):
    """How the API under attack verifies tokens, and what a legitimate issuer signs with."""

    algorithm: str
    signing_key: Any
    public_pem: bytes | None = None


Forge = Callable[[Deployment], str]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(**changes: Any) -> dict[str, Any]:
    """A complete, valid claim set; a change to None removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "alice",
        "org": "org-a",
        "permissions": ["manage:instances", "manage:servers", "view:audit"],
        "iat": now,
        "exp": now + HOUR,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return {key: value for key, value in (base | changes).items() if value is not None}


def signed(deployment: Deployment, payload: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(
        payload, deployment.signing_key, algorithm=deployment.algorithm, headers=headers or None
    )


def with_claims(**changes: Any) -> Forge:
    """A token the legitimate issuer signed, whose claims are wrong in some way."""
    return lambda d: signed(d, claims(**changes))


def unsigned(alg: str, signature: str = "") -> Forge:
    """`alg: none` and its spellings (RFC 7515 §4.1.1 names are case-sensitive)."""
    return lambda d: f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims())}.{signature}"


def none_keeping_the_signature(d: Deployment) -> str:
    _, body, signature = signed(d, claims()).split(".")
    return f"{segment({'alg': 'none'})}.{body}.{signature}"


def lifetime_over_maximum() -> dict[str, Any]:
    # iat and exp from one clock reading: a table built at import would drift from an iat
    # taken when the test runs, half an hour later in a full run.
    now = int(time.time())
    return claims(iat=now, exp=now + 24 * HOUR + 60)


def issued_two_days_ago() -> dict[str, Any]:
    now = int(time.time())
    return claims(iat=now - 48 * HOUR, exp=now + HOUR)


def tampered(**changes: Any) -> Forge:
    """A valid token whose payload was edited, sent with the original signature."""

    def forge(d: Deployment) -> str:
        header, _, signature = signed(d, claims()).split(".")
        return f"{header}.{segment(claims(**changes))}.{signature}"

    return forge


def header_edited(d: Deployment) -> str:
    _, body, signature = signed(d, claims()).split(".")
    return f"{segment({'alg': d.algorithm, 'typ': 'JWT', 'kid': 'other'})}.{body}.{signature}"


def signature_of_another_token(d: Deployment) -> str:
    header, body, _ = signed(d, claims(sub="alice")).split(".")
    signature = signed(d, claims(sub="mallory")).split(".")[2]
    return f"{header}.{body}.{signature}"


def hmac_token(key: bytes, payload: dict[str, Any], alg: str = "HS256") -> str:
    """An HMAC-signed token assembled by hand: PyJWT refuses to use a PEM key as a secret."""
    signing_input = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def hs256_with_the_public_key(d: Deployment) -> str:
    """Algorithm confusion: the server's public key (as configured) used as an HMAC secret."""
    return hmac_token(d.public_pem or b"", claims())


def hs256_with_the_public_key_der(d: Deployment) -> str:
    key = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hmac_token(key, claims())


def another_algorithm_of_the_same_key(d: Deployment) -> str:
    """PS256 with the very RSA key whose RS256 signatures are accepted."""
    return jwt.encode(claims(), RSA_KEY, algorithm="PS256")


def verbatim(token: str) -> Forge:
    return lambda d: token


def attacker_signed(**headers: Any) -> Forge:
    """Signed with the attacker's secret; the header points at the attacker's key."""
    return lambda d: jwt.encode(
        claims(), "attacker-secret-of-at-least-thirty-two-bytes", "HS256", headers=headers
    )


COMMON_ATTACKS: Final[dict[str, Forge]] = {
    "alg none": unsigned("none"),
    "alg None": unsigned("None"),
    "alg NONE": unsigned("NONE"),
    "alg none with a signature": unsigned("none", b64(b"x" * 32)),
    "alg none keeping the original signature": none_keeping_the_signature,
    "no alg at all": lambda d: f"{segment({'typ': 'JWT'})}.{segment(claims())}.",
    "expired": with_claims(exp=int(time.time()) - 1),
    "expired long ago": with_claims(exp=1),
    "not yet valid (nbf)": with_claims(nbf=int(time.time()) + HOUR),
    "issued in the future (iat)": with_claims(iat=int(time.time()) + HOUR),
    "wrong issuer": with_claims(iss="https://evil.example"),
    "no issuer": with_claims(iss=None),
    "wrong audience": with_claims(aud="someone-else"),
    "audience list without ours": with_claims(aud=["a", "b"]),
    "no audience": with_claims(aud=None),
    "no sub": with_claims(sub=None),
    "no org": with_claims(org=None),
    "no exp": with_claims(exp=None),
    "no permissions": with_claims(permissions=None),
    "sub not a string": with_claims(sub=42),
    "empty org": with_claims(org=""),
    "org not a string": with_claims(org=["org-a", "org-b"]),
    "permissions not a list": with_claims(permissions="manage:instances"),
    "exp not a number": with_claims(exp="tomorrow"),
    "no iat": with_claims(iat=None),
    "iat not a number": with_claims(iat="yesterday"),
    "iat true": with_claims(iat=True),
    "exp in the year 9999": with_claims(exp=253402300799),
    "exp 1e300": with_claims(exp=1e300),
    "exp NaN": with_claims(exp=float("nan")),
    "exp Infinity": with_claims(exp=float("inf")),
    "lifetime a minute over the maximum": lambda d: signed(d, lifetime_over_maximum()),
    "issued two days ago, expiring in an hour": lambda d: signed(d, issued_two_days_ago()),
    "jti not a string": with_claims(jti=42),
    "payload tampered: another org": tampered(org="org-b"),
    "payload tampered: more permissions": tampered(permissions=["manage:everything"]),
    "payload tampered: later exp": tampered(exp=int(time.time()) + 100 * HOUR),
    "header tampered": header_edited,
    "signature removed": lambda d: signed(d, claims()).rsplit(".", 1)[0] + ".",
    "signature of another token": signature_of_another_token,
    "attacker key via jku": attacker_signed(jku="https://evil.example/jwks.json"),
    "attacker key via kid traversal": attacker_signed(kid="../../../dev/null"),
    "garbage": verbatim("garbage"),
    "three dots": verbatim("..."),
    "three empty-looking parts": verbatim("a.b.c"),
    "base64 junk": verbatim(f"{b64(b'{')}.{b64(b'}')}.{b64(b'x')}"),
    "8 KiB of junk": verbatim("A" * 8192),
}
HS256_ATTACKS: Final[dict[str, Forge]] = {
    "signed with another secret": lambda d: jwt.encode(
        claims(), "another-secret-of-at-least-thirty-two-bytes", "HS256"
    ),
    "HS512 with the right secret": lambda d: jwt.encode(claims(), d.signing_key, "HS512"),
}
RS256_ATTACKS: Final[dict[str, Forge]] = {
    "HS256 signed with the public key (PEM)": hs256_with_the_public_key,
    "HS256 signed with the public key (DER)": hs256_with_the_public_key_der,
    "signed with another RSA key": lambda d: jwt.encode(claims(), OTHER_RSA_KEY, "RS256"),
    "PS256 with the same key": another_algorithm_of_the_same_key,
    "ES256 token": lambda d: jwt.encode(claims(), EC_KEY, "ES256"),
}
# Authorization values that carry no token at all: 401 without `error="invalid_token"`.
NO_TOKEN: Final = ["", "Bearer", "Bearer ", "Bearer    ", "bearer", "Basic YWxpY2U6c2VjcmV0"]


def public_pem() -> bytes:
    return RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def deployment_settings(settings: Settings, kind: str) -> tuple[Settings, Deployment]:
    """The test's settings turned into an HS256 or RS256 deployment with iss and aud set."""
    configured = msgspec.structs.replace(settings, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    if kind == "HS256":
        return configured, Deployment("HS256", settings.jwt_secret)
    pem = public_pem()
    configured = msgspec.structs.replace(
        configured, jwt_algorithm="RS256", jwt_public_key=pem.decode()
    )
    return configured, Deployment("RS256", RSA_KEY, pem)


# Every path parameter is an id ({instance_id}, {backup_id}, {key_id}, …).
_PATH_ID: Final = re.compile(r"\{\w+\}")
ENDLESS_STREAMS: Final = frozenset({"/api/events/stream", "/api/mcp"})


def endpoints(app: Litestar) -> list[tuple[str, str]]:
    """Every (method, path) under /api in the OpenAPI document, ids filled in."""
    paths = app.openapi_schema.to_schema()["paths"]
    found = [
        (method.upper(), _PATH_ID.sub(SOME_ID, path))
        for path, item in paths.items()
        if path.startswith("/api/")
        for method in item
    ]
    assert len(found) >= 16, found  # the API.md endpoints: a shrinking list is a bug here
    return found


async def answers(
    app: Litestar, authorization: str, *, endless: bool = True
) -> dict[str, httpx.Response]:
    """Each endpoint's answer; without `endless`, leaving out the streams that never end
    once accepted (the in-process transport reads a whole body)."""
    headers = {"Authorization": authorization} if authorization else {}
    found = {}
    async with client_of(app) as client:
        for method, path in endpoints(app):
            if not endless and path in ENDLESS_STREAMS:
                continue
            body: dict[str, Any] | None = {} if method in ("POST", "PATCH") else None
            answer = await client.request(method, path, json=body, headers=headers)
            found[f"{method} {path}"] = answer
    return found


def refusal_problems(answer: httpx.Response, *, token_given: bool) -> list[str]:
    """What is wrong with `answer` as a 401 (empty when it is one)."""
    challenge = answer.headers.get("www-authenticate", "")
    problems = []
    if answer.status_code != 401:
        problems.append(f"status {answer.status_code}")
    if not challenge.startswith("Bearer"):
        problems.append(f"challenge {challenge!r}")
    if token_given != ('error="invalid_token"' in challenge):
        problems.append(f"challenge {challenge!r} for token_given={token_given}")
    if answer.headers.get("content-type") != "application/problem+json":
        problems.append(f"content type {answer.headers.get('content-type')}")
    return problems


def not_refused(found: dict[str, httpx.Response], *, token_given: bool) -> dict[str, list[str]]:
    checked = {name: refusal_problems(a, token_given=token_given) for name, a in found.items()}
    return {name: problems for name, problems in checked.items() if problems}


@pytest.fixture
async def api(
    request: pytest.FixtureRequest, settings: Settings, pool: Pool
) -> AsyncIterator[tuple[Litestar, Deployment]]:
    """The app as an HS256 or an RS256 deployment (`request.param`; HS256 by default)."""
    kind = getattr(request, "param", "HS256")
    configured, deployment = deployment_settings(settings, kind)
    async with serving(
        create_app(configured.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    ) as app:
        yield app, deployment


def attacks_on(kind: str) -> dict[str, Forge]:
    return COMMON_ATTACKS | (HS256_ATTACKS if kind == "HS256" else RS256_ATTACKS)


@pytest.mark.parametrize("api", ["HS256", "RS256"], indirect=True)
async def test_the_legitimate_token_is_accepted_on_every_endpoint(
    api: tuple[Litestar, Deployment],
) -> None:
    """The control: without it, a 401 below could come from the set-up, not the attack."""
    app, deployment = api

    # The streams' acceptance of a good token: tests/test_event_stream.py, tests/test_mcp*.py.
    found = await answers(app, f"Bearer {signed(deployment, claims())}", endless=False)

    assert {name: a.status_code for name, a in found.items() if a.status_code == 401} == {}


@pytest.mark.parametrize("api", ["HS256", "RS256"], indirect=True)
async def test_every_forged_or_unusable_token_is_401_on_every_endpoint(
    api: tuple[Litestar, Deployment],
) -> None:
    app, deployment = api
    failures = {}

    for name, forge in attacks_on(deployment.algorithm).items():
        found = await answers(app, f"Bearer {forge(deployment)}")
        failures[name] = not_refused(found, token_given=True)

    assert {name: wrong for name, wrong in failures.items() if wrong} == {}


async def test_a_request_without_a_bearer_token_is_401_on_every_endpoint(
    api: tuple[Litestar, Deployment],
) -> None:
    app, _ = api
    failures = {}

    for authorization in NO_TOKEN:
        found = await answers(app, authorization)
        failures[authorization] = not_refused(found, token_given=False)

    assert {value: wrong for value, wrong in failures.items() if wrong} == {}


async def test_an_accepted_token_is_refused_once_it_expires(
    api: tuple[Litestar, Deployment],
) -> None:
    """Verified tokens are cached (api/auth.py): the cache must not outlive `exp`."""
    app, deployment = api
    token = signed(deployment, claims(exp=int(time.time()) + 2))
    async with client_of(app, token) as client:
        assert (await client.get("/api/instances")).status_code == 200

        async def refused() -> bool:
            return (await client.get("/api/instances")).status_code == 401

        await eventually(refused, timeout=10, interval=0.2, message="the expired token refused")
