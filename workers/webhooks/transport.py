"""One webhook POST: dialled only to a checked address, bounded in time and in what it reads,
redirects never followed (a 3xx is an answer like any other, and not a success)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias
from urllib.parse import urlsplit

import httpcore
import msgspec

from workers.ssh.network_policy import AddressNotAllowed
from workers.webhooks.addresses import WebhookAddresses

EXCERPT_BYTES: Final = 1024
MAX_RESPONSE_BYTES: Final = 64 * 1024


class Answered(msgspec.Struct, frozen=True):
    """The receiver answered; 2xx is a delivery, anything else a failed attempt."""

    status_code: int
    latency_ms: int
    excerpt: str

    @property
    def delivered(self) -> bool:
        return 200 <= self.status_code < 300


class Unanswered(msgspec.Struct, frozen=True):
    """No answer: `refused` (the address is not one webhooks may reach), `timeout`, or
    `network` (no connection, TLS failure, broken response)."""

    kind: str
    latency_ms: int
    error: str

    delivered = False


AttemptResult: TypeAlias = Answered | Unanswered


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address the policy returned for the host, never to another lookup."""

    def __init__(self, addresses: WebhookAddresses, *, tls: bool) -> None:
        self._addresses = addresses
        self._tls = tls
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self._addresses.address_for(host, port, tls=self._tls)
        # TLS still verifies the certificate against `host`: httpcore passes the URL's host
        # as server_hostname, whatever address the socket was opened to.
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109, ARG002 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowed(path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class WebhookTransport:
    """Keeps connections to receivers alive between deliveries (one pool per scheme, each
    dialling through the policy)."""

    def __init__(
        self,
        addresses: WebhookAddresses,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
    ) -> None:
        self._timeout = timeout
        context = ssl_context or ssl.create_default_context()
        self._pools = {
            "https": httpcore.AsyncConnectionPool(
                ssl_context=context,
                max_connections=max_connections,
                keepalive_expiry=30.0,
                network_backend=_CheckedBackend(addresses, tls=True),
            ),
            "http": httpcore.AsyncConnectionPool(
                max_connections=max_connections,
                keepalive_expiry=30.0,
                network_backend=_CheckedBackend(addresses, tls=False),
            ),
        }

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> AttemptResult:
        started = time.monotonic()
        pool = self._pools.get(urlsplit(url).scheme)
        if pool is None:
            return Unanswered("refused", 0, "not an http(s) URL")
        limits = {"connect": self._timeout, "read": self._timeout, "write": self._timeout}
        try:
            # The per-operation timeouts bound each read; this bounds the whole call, so a
            # receiver that trickles its answer a byte at a time is cut off too.
            async with asyncio.timeout(self._timeout):
                return await _exchange(pool, url, headers, body, limits | {"pool": self._timeout})
        except AddressNotAllowed as e:
            return Unanswered("refused", _ms(started), str(e))
        except (TimeoutError, httpcore.TimeoutException):
            return Unanswered("timeout", _ms(started), f"no answer within {self._timeout:g}s")
        except (OSError, httpcore.NetworkError, httpcore.ProtocolError, ssl.SSLError) as e:
            return Unanswered("network", _ms(started), f"{type(e).__name__}: {e}"[:500])

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


async def _exchange(
    pool: httpcore.AsyncConnectionPool,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    limits: dict[str, float],
) -> Answered:
    started = time.monotonic()
    async with pool.stream(
        "POST", url, headers=list(headers.items()), content=body, extensions={"timeout": limits}
    ) as response:
        received = bytearray()
        async for chunk in response.aiter_stream():
            received += chunk
            if len(received) >= MAX_RESPONSE_BYTES:
                break  # the rest is not read: the connection is closed, not reused
        excerpt = bytes(received[:EXCERPT_BYTES]).decode("utf-8", "replace")
        return Answered(response.status, _ms(started), excerpt)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
