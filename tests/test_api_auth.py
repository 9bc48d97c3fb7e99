"""Authentication and permissions: 401 for a missing or bad token, 403 for a missing
permission, and only the configured algorithm and key."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import msgspec
import pytest
from api_fixtures import (
    TEST_HOST_PORTS,
    VIEW_ONLY,
    Caller,
    CallerFactory,
    client_of,
    mint,
    new_server,
    server_body,
    serving,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.app import create_app
from events.pool import Pool
from odoofleet.settings import Settings

SOME_ID = "5f0c3b54-8d1b-4c7e-9a37-1f3d2a4b5c6d"
WRITES = [
    ("POST", "/api/instances", {"name": "x", "serverId": SOME_ID}),
    ("PATCH", f"/api/instances/{SOME_ID}", {"name": "x"}),
    ("DELETE", f"/api/instances/{SOME_ID}", None),
    ("POST", f"/api/instances/{SOME_ID}/control", {"action": "start"}),
    ("POST", "/api/servers", server_body()),
    ("DELETE", f"/api/servers/{SOME_ID}", None),
    ("POST", f"/api/servers/{SOME_ID}/validate", None),
]
READS = [
    ("/api/instances", "view:instances"),
    (f"/api/instances/{SOME_ID}", "view:instances"),
    (f"/api/instances/{SOME_ID}/health", "view:instances"),
    (f"/api/instances/{SOME_ID}/health-score", "view:instances"),
    (f"/api/instances/{SOME_ID}/operations", "view:instances"),
    (f"/api/instances/{SOME_ID}/events", "view:audit"),
    ("/api/servers", "view:servers"),
    (f"/api/servers/{SOME_ID}", "view:servers"),
    ("/api/audit-logs", "view:audit"),
]


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "alice", "org": "org-a", "permissions": ["view:instances"], "iat": now}
    base["exp"] = now + 60
    return {key: value for key, value in (base | changes).items() if value is not None}


async def test_a_request_without_a_token_is_401_with_a_bearer_challenge(
    anonymous: Caller,
) -> None:
    response = await anonymous.get("/api/instances")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda s: "not-a-jwt", id="garbage"),
        pytest.param(
            lambda s: jwt.encode(claims(), "another-secret-32-bytes-long-xxxxx"), id="key"
        ),
        pytest.param(lambda s: jwt.encode(claims(exp=int(time.time()) - 5), s), id="expired"),
        pytest.param(lambda s: jwt.encode(claims(exp=None), s), id="no-exp"),
        pytest.param(lambda s: jwt.encode(claims(org=None), s), id="no-org"),
        pytest.param(lambda s: jwt.encode(claims(sub=""), s), id="empty-sub"),
        pytest.param(lambda s: jwt.encode(claims(permissions="all"), s), id="bad-permissions"),
        pytest.param(lambda s: jwt.encode(claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(lambda s: jwt.encode(claims(), s, algorithm="HS512"), id="other-alg"),
    ],
)
async def test_a_bad_token_is_401(caller: CallerFactory, settings: Settings, token: Any) -> None:
    client = await caller(token=token(settings.jwt_secret))

    response = await client.get("/api/instances")

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_scheme_other_than_bearer_is_401(anonymous: Caller, settings: Settings) -> None:
    response = await anonymous.get(
        "/api/instances", headers={"Authorization": f"Basic {mint(settings)}"}
    )

    assert response.status_code == 401


async def test_probes_and_the_schema_need_no_token(anonymous: Caller) -> None:
    for path in ("/healthz", "/readyz", "/schema/openapi.json", "/schema"):
        assert (await anonymous.get(path)).status_code == 200, path


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_a_view_only_caller_may_not_write(
    viewer: Caller, method: str, path: str, body: Any
) -> None:
    response = await viewer.request(method, path, json=body)

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("path", "permission"), READS)
async def test_every_read_needs_its_view_permission(
    caller: CallerFactory, path: str, permission: str
) -> None:
    others = tuple(p for p in VIEW_ONLY if p != permission)
    without = await caller(permissions=others)
    holder = await caller(permissions=(permission,))

    assert (await without.get(path)).status_code == 403
    assert (await holder.get(path)).status_code in (200, 404)


async def test_manage_implies_view(caller: CallerFactory) -> None:
    manager = await caller(permissions=("manage:instances",))

    assert (await manager.get("/api/instances")).status_code == 200
    assert (await manager.get("/api/servers")).status_code == 403


async def test_env_var_values_are_masked_for_view_only_callers(
    alice: Caller, viewer: Caller
) -> None:
    server_id = await new_server(alice)
    response = await alice.post(
        "/api/instances", json={"name": "x", "serverId": server_id, "envVars": {"SECRET": "v"}}
    )
    created, after = response.json(), {"X-Min-Position": response.headers["x-position"]}

    shown = await viewer.get(f"/api/instances/{created['id']}", headers=after)
    listed = await viewer.get("/api/instances", headers=after)

    assert shown.json()["envVars"] == {"SECRET": "********"}
    assert listed.json()["instances"][0]["envVars"] == {"SECRET": "********"}
    revealed = await alice.get(f"/api/instances/{created['id']}", params={"reveal": "envVars"})
    assert revealed.json()["envVars"] == {"SECRET": "v"}


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(
    params=[
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
    ],
    ids=["RS256", "ES256"],
)
def signer(request: pytest.FixtureRequest) -> tuple[str, Any]:
    algorithm, make = request.param
    return algorithm, make()


@pytest.fixture
async def public_key_app(
    settings: Settings, pool: Pool, signer: tuple[str, Any]
) -> AsyncIterator[Any]:
    algorithm, key = signer
    configured = msgspec.structs.replace(
        settings,
        jwt_algorithm=algorithm,
        jwt_public_key=_pem(key),
        jwt_issuer="https://idp.example",
        jwt_audience="odoofleet",
    )
    async with serving(
        create_app(configured.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    ) as app:
        yield app


async def test_public_key_tokens_are_verified_with_the_configured_algorithm_only(
    public_key_app: Any, signer: tuple[str, Any]
) -> None:
    algorithm, key = signer
    good = claims(iss="https://idp.example", aud="odoofleet")
    cases = {
        "valid": (jwt.encode(good, key, algorithm=algorithm), 200),
        "wrong issuer": (jwt.encode(good | {"iss": "https://evil"}, key, algorithm=algorithm), 401),
        "wrong audience": (jwt.encode(good | {"aud": "other"}, key, algorithm=algorithm), 401),
        "no audience": (
            jwt.encode(claims(iss="https://idp.example"), key, algorithm=algorithm),
            401,
        ),
    }
    for name, (token, status) in cases.items():
        async with client_of(public_key_app, token) as client:
            assert (await client.get("/api/instances")).status_code == status, name


async def test_an_hs256_token_signed_with_the_public_key_is_refused(
    public_key_app: Any, signer: tuple[str, Any]
) -> None:
    _, key = signer
    payload = claims(iss="https://idp.example", aud="odoofleet")
    # The classic algorithm confusion: the public key used as an HMAC secret. PyJWT refuses to
    # sign with a PEM key, so the token is assembled by hand.
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = jwt.utils.base64url_encode(msgspec.json.encode(payload))
    signing_input = header + b"." + body
    signature = hmac.new(_pem(key).encode(), signing_input, hashlib.sha256).digest()
    token = (signing_input + b"." + jwt.utils.base64url_encode(signature)).decode()

    async with client_of(public_key_app, token) as client:
        assert (await client.get("/api/instances")).status_code == 401
