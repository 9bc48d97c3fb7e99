"""Odoo's external API (`/jsonrpc`: `common.authenticate`, `object.execute_kw`) as the control
plane calls it: over an SSH direct-tcpip channel to the instance's port on the server's
loopback (workers/odoo/tunnel.py), so no port of an instance is ever opened to the world."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec

from workers.odoo.http import HttpError, Reader, Writer, post_json
from workers.ssh.connection import ServerConnectionInfo

DEFAULT_MAX_ANSWER_BYTES: Final = 4 << 20
_encoder: Final = msgspec.json.Encoder()

Opener = Callable[[ServerConnectionInfo, int], Awaitable[tuple[Reader, Writer]]]
"""Opens a byte stream to `127.0.0.1:<port>` on the server."""


class OdooTarget(msgspec.Struct, frozen=True, kw_only=True):
    """Where an instance's Odoo answers and who to call it as. `host` is the Host header
    (the instance's host name: Odoo's dbfilter reads it)."""

    server: ServerConnectionInfo
    port: int
    host: str
    db: str
    login: str
    password: str

    def __repr__(self) -> str:
        return f"OdooTarget({self.host}, db={self.db}, login={self.login})"


class OdooUnreachable(Exception):
    """Nothing usable answered: the server, the channel or Odoo's HTTP."""


class OdooRefused(Exception):
    """Odoo answered with an error (access denied, validation, unknown model, ...)."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}")


class _Error(msgspec.Struct):
    message: str = ""
    data: dict[str, Any] = {}


class _Answer(msgspec.Struct):
    result: Any = None
    error: _Error | None = None


class OdooRpc:
    """Calls one Odoo after another; `open_stream` decides how bytes reach the server."""

    def __init__(
        self,
        open_stream: Opener,
        *,
        timeout: float = 30.0,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self._open = open_stream
        self._timeout = timeout
        self._max = max_answer_bytes
        self._ids = itertools.count(1)

    async def call(self, target: OdooTarget, service: str, method: str, args: list[Any]) -> Any:
        body = _encoder.encode(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "id": next(self._ids),
                "params": {"service": service, "method": method, "args": args},
            }
        )
        try:
            answer = await asyncio.wait_for(self._post(target, body), self._timeout)
        except TimeoutError:
            raise OdooUnreachable(f"Odoo did not answer within {self._timeout:g} s") from None
        except (HttpError, OSError, asyncio.IncompleteReadError) as e:
            raise OdooUnreachable(f"no usable answer from Odoo: {e}") from e
        if answer.status != 200:
            raise OdooUnreachable(f"Odoo answered HTTP {answer.status}")
        try:
            decoded = msgspec.json.decode(answer.body, type=_Answer)
        except msgspec.DecodeError as e:
            raise OdooUnreachable(f"Odoo's answer is not JSON-RPC: {e}") from e
        if decoded.error is not None:
            data = decoded.error.data
            raise OdooRefused(
                str(data.get("name", "odoo.exceptions.UserError")),
                str(data.get("message") or decoded.error.message),
            )
        return decoded.result

    async def authenticate(self, target: OdooTarget) -> int:
        uid = await self.call(
            target, "common", "authenticate", [target.db, target.login, target.password, {}]
        )
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise OdooRefused("odoo.exceptions.AccessDenied", "the MCP credentials were refused")
        return uid

    async def execute_kw(
        self,
        target: OdooTarget,
        model: str,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        uid = await self.authenticate(target)
        call_args = [target.db, uid, target.password, model, method, args, kwargs or {}]
        return await self.call(target, "object", "execute_kw", call_args)

    async def _post(self, target: OdooTarget, body: bytes) -> Any:
        reader, writer = await self._open(target.server, target.port)
        try:
            return await post_json(
                reader, writer, host=target.host, path="/jsonrpc", body=body, max_bytes=self._max
            )
        finally:
            close = getattr(writer, "close", None)
            if close is not None:
                close()
