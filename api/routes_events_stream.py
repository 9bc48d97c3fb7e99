"""`GET /api/events/stream`: the organization's public events, live, as Server-Sent Events.

Each event's SSE `id` is its global log position; a client that reconnects with
`Last-Event-ID` gets every event after that one, none missed and none twice
(api/event_feed.py). A comment line every few seconds keeps proxies from closing an idle
stream; a client that falls a buffer behind is cut off and resumes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Final, Literal

import jwt
from litestar import get
from litestar.datastructures import State
from litestar.params import FromQuery, HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.api_keys import KEY_PREFIX, ApiKeys
from api.auth import Unauthenticated, needs
from api.errors import FieldError, InvalidRequest, Unavailable
from api.event_feed import Delivery, LiveFeed, StreamFilter, TooSlow, filter_for
from api.web import AuthRequest, problems
from events.store import Checkpoint
from projections.public_events import EVENT_NAMES

# How long a client waits before reconnecting after the stream ends (the SSE `retry` field).
_RETRY_MS: Final = 1000

Types = Annotated[
    list[str] | None,
    QueryParameter(
        description="Public event names, comma-separated or repeated (e.g."
        " instance.started,instance.failed); none: every event",
    ),
]
ResourceId = Annotated[str | None, QueryParameter(max_length=200)]
LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        required=False,
        description="Resume after this event: the `id` (log position) of the last event seen.",
    ),
]


@get(
    "/events/stream",
    operation_id="streamEvents",
    summary="Follow the organization's events (Server-Sent Events)",
    opt=needs("view:audit"),
    responses=problems(400, 401, 403, 503),
    tags=["events"],
    media_type="text/event-stream",
)
async def stream(
    request: AuthRequest,
    state: State,
    types: Types = None,
    resource_type: FromQuery[Literal["instance", "server", "operation"] | None] = None,
    resource_id: ResourceId = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    """Public events (`{id, position, type, resourceType, resourceId, orgId, occurredAt,
    data}`) of the caller's organization as they are recorded; `event:` is the type."""
    feed: LiveFeed = state.event_feed
    names = _names(types)
    resume = await _resume_point(feed, last_event_id)
    if feed.open_streams >= feed.max_streams:
        raise Unavailable("too many event streams are open on this server; retry")
    principal = request.user
    shows = filter_for(principal.org_id, names, resource_type, resource_id, principal.instance_ids)
    await feed.start()
    return ServerSentEvent(_messages(feed, shows, resume, _still_valid(state, request.auth)))


def _still_valid(state: State, token: str) -> Callable[[], Awaitable[bool]]:
    """Whether the credential the stream was opened with still holds: an open stream is no
    new request, so a revoked or expired API key, or an expired token, ends it."""
    if token.startswith(KEY_PREFIX):
        keys: ApiKeys = state.api_keys

        async def key_holds() -> bool:
            try:
                await keys.authenticate(token)
            except Unauthenticated:
                return False
            return True

        return key_holds
    # Verified when the stream opened; only its expiry is left to watch.
    expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])

    async def token_holds() -> bool:
        return time.time() < expires

    return token_holds


async def _messages(
    feed: LiveFeed,
    shows: StreamFilter,
    resume: Checkpoint | None,
    still_valid: Callable[[], Awaitable[bool]],
) -> AsyncIterator[ServerSentEventMessage]:
    # Subscribed here, not in the handler: a stream whose response never starts must not
    # leave a subscription behind.
    subscription = feed.subscribe(shows)
    try:
        yield ServerSentEventMessage(data=None, retry=_RETRY_MS, comment="odoofleet events")
        last = subscription.since
        if resume is not None:
            last = resume
            async for delivery in feed.catch_up(subscription, resume):
                yield _message(delivery)
                last = delivery.checkpoint
        checked = time.monotonic()
        while True:
            live = await subscription.next(feed.heartbeat)
            if time.monotonic() - checked >= feed.heartbeat:
                if not await still_valid():
                    yield ServerSentEventMessage(data=None, comment="credentials no longer valid")
                    return
                checked = time.monotonic()
            if live is None:
                yield ServerSentEventMessage(data=None, comment="keepalive")
            elif live.checkpoint > last:
                yield _message(live)
                last = live.checkpoint
    except TooSlow:
        yield ServerSentEventMessage(
            data=None, comment="too far behind: reconnect with Last-Event-ID to resume"
        )
    finally:
        feed.unsubscribe(subscription)


def _message(delivery: Delivery) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=delivery.json, event=delivery.event.type, id=delivery.event.position
    )


def _names(types: list[str] | None) -> frozenset[str]:
    names = frozenset(
        name.strip() for given in types or () for name in given.split(",") if name.strip()
    )
    unknown = sorted(names - set(EVENT_NAMES))
    if unknown:
        known = ", ".join(EVENT_NAMES)
        raise InvalidRequest(FieldError("types", f"unknown {', '.join(unknown)}; known: {known}"))
    return names


async def _resume_point(feed: LiveFeed, last_event_id: str | None) -> Checkpoint | None:
    if last_event_id is None or not last_event_id.strip():
        return None
    text = last_event_id.strip()
    if not text.isdecimal() or len(text) > 18 or int(text) < 1:
        raise InvalidRequest(FieldError("Last-Event-ID", "must be an event id from this stream"))
    found = await feed.resolve(int(text))
    if found is None:
        raise InvalidRequest(FieldError("Last-Event-ID", "no event has this id"))
    return found
