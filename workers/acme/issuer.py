"""Ordering a certificate from an ACME CA (RFC 8555) with HTTP-01, through certbot's `acme`
library. The library is synchronous (requests), so each exchange runs in a thread; the
challenge files are published by the caller (over SFTP, into the directory the server's proxy
serves `/.well-known/acme-challenge/` from) between ordering and answering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import msgspec
from acme import challenges, client, errors, messages
from acme.crypto_util import make_csr
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwk import JWKRSA

RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"
# How long the CA may take to validate and issue before the order counts as failed.
ORDER_DEADLINE = timedelta(seconds=90)


class AcmeConfig(msgspec.Struct, frozen=True, kw_only=True):
    """`ca_bundle`: a file of CA certificates the directory's own HTTPS is checked against
    (a private CA such as Pebble's); empty: the system's. `account_key_file`: the account's
    key (PEM); empty: a key made once per worker process (an account per process)."""

    directory_url: str = "https://acme-v02.api.letsencrypt.org/directory"
    email: str = ""
    ca_bundle: str = ""
    account_key_file: str = ""


class AcmeFailed(Exception):
    """The CA refused or failed the order; `rate_limited`: it said too many (retry later)."""

    def __init__(self, message: str, *, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited


@dataclass(frozen=True)
class Challenge:
    path: str  # under the host, e.g. `/.well-known/acme-challenge/<token>`
    content: str
    challb: messages.ChallengeBody
    response: challenges.HTTP01Response


@dataclass(frozen=True)
class Issued:
    fullchain_pem: str
    private_key_pem: str
    expires_at: datetime


@dataclass
class AcmeClient:
    """One account on one CA, registered on first use."""

    config: AcmeConfig
    _client: client.ClientV2 | None = field(default=None, repr=False)
    _key: JWKRSA | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def issue(
        self,
        domain: str,
        publish: Callable[[list[tuple[str, str]]], Awaitable[None]],
    ) -> Issued:
        """A certificate for `domain`: `publish` gets the challenge files (path, content) to
        serve before the CA is told to look at them."""
        key_pem = _new_private_key()
        try:
            async with self._lock:
                if self._client is None:
                    self._client = await asyncio.to_thread(self._register)
                acme = self._client
            order, todo = await asyncio.to_thread(self._order, acme, domain, key_pem)
            await publish([(c.path, c.content) for c in todo])
            fullchain = await asyncio.to_thread(self._finish, acme, order, todo)
        except messages.Error as e:
            raise AcmeFailed(_describe(e), rate_limited=e.typ == RATE_LIMITED) from e
        except (errors.Error, OSError) as e:
            raise AcmeFailed(f"{type(e).__name__}: {e}") from e
        first = x509.load_pem_x509_certificate(fullchain.encode())
        return Issued(fullchain, key_pem.decode(), first.not_valid_after_utc.astimezone(UTC))

    def _register(self) -> client.ClientV2:
        key = self._account_key()
        # requests takes a CA bundle's path where the library's annotation says bool.
        verify = cast(bool, self.config.ca_bundle or True)
        net = client.ClientNetwork(key, user_agent="odoofleet", verify_ssl=verify)
        directory = client.ClientV2.get_directory(self.config.directory_url, net)
        acme = client.ClientV2(directory, net)
        registration = messages.NewRegistration.from_data(
            email=self.config.email or None, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as e:  # the key's account exists: use it
            net.account = messages.RegistrationResource(
                uri=e.location, body=messages.Registration()
            )
        except messages.Error as e:
            raise AcmeFailed(_describe(e), rate_limited=e.typ == RATE_LIMITED) from e
        return acme

    def _account_key(self) -> JWKRSA:
        if self._key is None:
            if self.config.account_key_file:
                pem = Path(self.config.account_key_file).read_bytes()
                loaded = serialization.load_pem_private_key(pem, password=None)
                assert isinstance(loaded, rsa.RSAPrivateKey), "the ACME account key must be RSA"
                self._key = JWKRSA(key=loaded)
            else:
                self._key = JWKRSA(key=rsa.generate_private_key(65537, 2048))
        return self._key

    def _order(
        self, acme: client.ClientV2, domain: str, key_pem: bytes
    ) -> tuple[messages.OrderResource, list[Challenge]]:
        order = acme.new_order(make_csr(key_pem, [domain]))
        todo: list[Challenge] = []
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # validated recently for this account (the CA reuses it)
            challb = next(
                (c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)),
                None,
            )
            if challb is None:
                raise AcmeFailed(f"the CA offers no HTTP-01 challenge for {domain}")
            response, validation = challb.response_and_validation(acme.net.key)
            todo.append(Challenge(challb.chall.path, validation, challb, response))
        return order, todo

    def _finish(
        self, acme: client.ClientV2, order: messages.OrderResource, todo: list[Challenge]
    ) -> str:
        for challenge in todo:
            acme.answer_challenge(challenge.challb, challenge.response)
        deadline = datetime.now() + ORDER_DEADLINE
        try:
            done = acme.poll_and_finalize(order, deadline=deadline)
        except errors.ValidationError as e:
            raise AcmeFailed(_validation_failure(e)) from e
        except errors.TimeoutError as e:
            raise AcmeFailed(f"the CA did not finish in {ORDER_DEADLINE.seconds} s") from e
        return str(done.fullchain_pem)


def _new_private_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _describe(error: messages.Error) -> str:
    return f"{error.typ}: {error.detail}" if error.detail else str(error.typ)


def _validation_failure(error: errors.ValidationError) -> str:
    reasons = []
    for authz in error.failed_authzrs:
        for challb in authz.body.challenges:
            if challb.error is not None:
                reasons.append(_describe(challb.error))
    return "validation failed: " + ("; ".join(reasons) or "the CA gave no reason")
