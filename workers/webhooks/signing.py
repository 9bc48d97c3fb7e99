"""Signing secrets and the Standard Webhooks headers of one delivery
(https://www.standardwebhooks.com: `webhook-id`, `webhook-timestamp`, `webhook-signature`)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from standardwebhooks import Webhook

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
_SECRET_BYTES: Final = 32  # the spec asks for 24 to 64 random bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def signed_headers(
    message_id: str, at: datetime, body: bytes, signing_secrets: Sequence[str]
) -> dict[str, str]:
    """The headers of one attempt. Several secrets (a rotation's grace period) give several
    space-separated signatures; a receiver accepts the message if any of them verifies."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in signing_secrets)
    return {
        "content-type": "application/json",
        "user-agent": "odoofleet-webhooks",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
