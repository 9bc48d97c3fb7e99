"""The sandbox's stand-in for a CA: a self-signed certificate for the domain, made here, so
`odoofleet dev --sandbox-server` shows the whole flow (check, certificate, HTTPS route)
without a CA that could reach the laptop. Chosen by ODOOFLEET_ACME_DIRECTORY_URL=self-signed;
browsers will warn, as they should."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from workers.acme.issuer import Issued

SELF_SIGNED: Final = "self-signed"
VALIDITY: Final = timedelta(days=90)  # like Let's Encrypt's, so renewals show in the sandbox


class SelfSignedIssuer:
    async def issue(
        self, domain: str, publish: Callable[[list[tuple[str, str]]], Awaitable[None]]
    ) -> Issued:
        await publish([])  # no challenge: nobody validates
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
        now = datetime.now(UTC).replace(microsecond=0)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return Issued(pem, private, certificate.not_valid_after_utc)
