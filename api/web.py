"""Small HTTP pieces shared by the routes: request metadata, ETags, headers, replies."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from litestar import MediaType, Request, Response
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter

from api.auth import Principal
from api.errors import FieldError, InvalidRequest, Problem
from api.idempotency import Reply
from api.request_ids import HEADER, given_or_new
from events.log_context import current
from events.metadata import Actor, EventMetadata

AuthRequest = Request[Principal, str, Any]

POSITION_HEADER: Final = "X-Position"
_ENTITY_TAG: Final = re.compile(r'"(\d{1,18})"')

MinPosition = Annotated[
    int | None,
    HeaderParameter(
        name="X-Min-Position",
        ge=1,
        required=False,
        description="Wait (up to 2 s) until the read model has applied this log position,"
        " as returned in X-Position by a write.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=255,
        description="Per caller (organization and user): the same key and body within 24 h"
        " returns the first response (re-read, secrets masked) and changes nothing; the same"
        " key with another body is refused with 422. Another user's key is a new request.",
    ),
]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description='The ETag of the version being changed, e.g. "3"; another version → 412.',
    ),
]

WRITE_HEADERS: Final = [
    ResponseHeader(
        name=POSITION_HEADER,
        documentation_only=True,
        description="Log position of the write; send it as X-Min-Position to read it back.",
    ),
    ResponseHeader(name="ETag", documentation_only=True, description="The stream version"),
]


def metadata_for(request: AuthRequest) -> EventMetadata:
    """Who, for which organization, from where: stored beside every event of the request."""
    principal = request.user
    agent = request.headers.get("user-agent")
    return EventMetadata(
        actor=Actor(id=principal.user_id, name=principal.user_name),
        org_id=principal.org_id,
        correlation_id=current("request_id") or given_or_new(request.headers.get(HEADER)),
        client_ip=request.client.host if request.client else None,
        user_agent=agent[:512] if agent else None,
    )


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match names; None for no header or `*` (any current version)."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ENTITY_TAG.fullmatch(if_match.strip())
    if found is None:
        raise InvalidRequest(FieldError("If-Match", 'one strong entity tag, e.g. "3", or *'))
    return int(found.group(1))


def write_headers(version: int, position: int | None, **extra: str) -> dict[str, str]:
    headers = {"ETag": etag(version), **extra}
    if position is not None:
        headers[POSITION_HEADER] = str(position)
    return headers


def respond(reply: Reply[Any]) -> Response[Any]:
    headers = dict(reply.headers)
    if reply.replayed:
        headers["Idempotent-Replayed"] = "true"
    if reply.body is None:  # no body at all rather than a JSON `null`
        return Response(b"", status_code=reply.status, headers=headers, media_type=MediaType.TEXT)
    return Response(reply.body, status_code=reply.status, headers=headers)


def position_of(reply: Reply[Any]) -> int | None:
    value = reply.headers.get(POSITION_HEADER)
    return int(value) if value else None


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI descriptions of the error responses an endpoint may give."""
    return {
        status: ResponseSpec(
            Problem,
            description=_DESCRIPTIONS[status],
            media_type="application/problem+json",
            generate_examples=False,
        )
        for status in statuses
    }


_DESCRIPTIONS: Final = {
    400: "Malformed or invalid body or parameters; `errors` lists the fields",
    401: "Missing, invalid or expired bearer token",
    403: "The token lacks the permission",
    404: "No such resource in the caller's organization",
    409: "Conflict: slug taken, action not allowed in the current status, concurrent change",
    412: "If-Match names another version",
    413: "Body larger than 1 MiB",
    422: "Idempotency-Key reused with a different request",
    429: "Too many requests of this kind for the organization; retry after Retry-After seconds",
    503: "A dependency is down; retry",
}
