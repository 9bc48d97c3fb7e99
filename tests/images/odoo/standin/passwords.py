"""Password hashes in passlib's pbkdf2_sha512 format (`$pbkdf2-sha512$rounds$salt$hash`), as
Odoo stores them in res_users.password, computed with hashlib (no passlib in the image)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# Real Odoo uses 600,000 rounds (17.0+); a test image would spend seconds per login on that.
ROUNDS = 10_000


def _ab64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")


def _ab64_decode(text: str) -> bytes:
    text = text.replace(".", "+")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ROUNDS)
    return f"$pbkdf2-sha512${ROUNDS}${_ab64(salt)}${_ab64(digest)}"


def verify(password: str, stored: str | None) -> bool:
    if not stored or not password:
        return False
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "pbkdf2-sha512":
        return False
    rounds, salt, expected = int(parts[2]), _ab64_decode(parts[3]), _ab64_decode(parts[4])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds)
    return hmac.compare_digest(digest, expected)
