"""The check of a server's address at registration (workers/ssh/network_policy.py): refused with
one message whatever the reason, naming the `host` field."""

from __future__ import annotations

from api.errors import FieldError, InvalidRequest
from workers.ssh.network_policy import AddressNotAllowed, NetworkPolicy


async def refuse_internal_address(policy: NetworkPolicy, host: str, port: int) -> None:
    """400 when `host` is, or resolves only to, addresses servers may not have. A name that
    does not resolve (yet) is accepted: every connection checks again, and fails then."""
    try:
        await policy.resolve(host, port)
    except AddressNotAllowed as e:
        raise InvalidRequest(FieldError("host", str(e))) from None
    except (OSError, TimeoutError):
        return
