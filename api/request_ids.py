"""Every request gets an id: the client's X-Request-Id when it is a sane one, else a new
UUID. It is bound to the request's log lines, becomes the correlation id of the events the
request writes (api/web.py), and is echoed in the X-Request-Id response header."""

from __future__ import annotations

import re
import uuid
from typing import Final

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from events.log_context import log_context

HEADER: Final = "x-request-id"
_SANE: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def given_or_new(value: str | None) -> str:
    return value if value is not None and _SANE.fullmatch(value) else str(uuid.uuid4())


def with_request_ids(app: ASGIApp) -> ASGIApp:
    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None
        )
        request_id = given_or_new(given)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[HEADER] = request_id
            await send(message)

        with log_context(request_id=request_id, correlation_id=request_id):
            await app(scope, receive, sending)

    return tagged
