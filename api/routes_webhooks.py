"""Webhook endpoints: list, create (the secret shown once, a test event sent), change, delete,
rotate the secret, and their deliveries (each attempt; redeliver one)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from api.auth import needs
from api.errors import FieldError, InvalidRequest, problem
from api.services import Deps, Services
from api.web import AuthRequest, MinPosition, metadata_for, problems
from api.wire_webhooks import (
    ChangeWebhookBody,
    CreatedWebhook,
    CreateWebhookBody,
    Delivery,
    DeliveryList,
    RotatedSecret,
    Webhook,
    WebhookList,
)
from api.written import as_written, position_header
from commands import webhook
from commands.runner import Outcome, execute_command
from events.webhook import WebhookSecretRotated, webhook_stream
from projections.public_events import EVENT_NAMES
from projections.webhook_deliveries import delivery_exists, list_deliveries
from projections.webhooks import WEBHOOKS, WebhookView, get_webhook, list_webhooks
from workers.ssh.network_policy import NetworkPolicy, parse_networks
from workers.webhooks.addresses import PRIVATE_NETWORKS, WebhookAddresses, url_problem
from workers.webhooks.signing import new_secret

MANAGE: Final = needs("manage:webhooks")
# How long the secret before a rotation still signs deliveries (beside the new one).
SECRET_GRACE: Final = timedelta(hours=24)
Limit = Annotated[int, Parameter(ge=1, le=200, description="Most recent deliveries to list")]
_TAGS: Final = ["webhooks"]


@get(
    "/webhooks",
    operation_id="listWebhooks",
    summary="List webhook endpoints",
    opt=MANAGE,
    responses=problems(400, 401, 403, 503),
    tags=_TAGS,
)
async def list_all(
    request: AuthRequest, services: Deps, min_position: MinPosition = None
) -> WebhookList:
    principal = request.user
    await services.reads.before_read(principal, min_position, ("webhooks",))
    found = await list_webhooks(services.pool, principal.org_id)
    return WebhookList(webhooks=[_shown(view) for view in found])


@post(
    "/webhooks",
    operation_id="createWebhook",
    summary="Create a webhook endpoint",
    status_code=201,
    opt=MANAGE,
    responses=problems(400, 401, 403, 413, 503),
    tags=_TAGS,
)
async def create(
    request: AuthRequest, services: Deps, data: JSONBody[CreateWebhookBody]
) -> Response[CreatedWebhook]:
    """The signing secret (`whsec_…`) is in this response only. A `webhook.test` event is
    delivered to the endpoint right away."""
    _check_url(services, data.url)
    _check_events(data.events)
    endpoint_id = str(uuid.uuid4())
    stream_id = webhook_stream(endpoint_id)
    secret = new_secret()
    command = webhook.CreateWebhook(
        endpoint_id=endpoint_id,
        url=data.url,
        events=sorted(set(data.events)),
        description=data.description,
        enabled=data.enabled,
        secret=await services.vault.seal(stream_id, secret),
    )
    outcome = await _execute(services, request, endpoint_id, command)
    shown = msgspec.structs.asdict(await _current(services, request, endpoint_id))
    headers = {"Location": f"/api/webhooks/{endpoint_id}", **position_header(outcome.position)}
    return Response(CreatedWebhook(**shown, secret=secret), status_code=201, headers=headers)


@get(
    "/webhooks/{endpoint_id:uuid}",
    operation_id="getWebhook",
    summary="Get a webhook endpoint",
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 503),
    tags=_TAGS,
)
async def get_one(
    request: AuthRequest,
    services: Deps,
    endpoint_id: FromPath[uuid.UUID],
    min_position: MinPosition = None,
) -> Webhook:
    principal = request.user
    await services.reads.before_read(principal, min_position, ("webhooks",))
    view = await get_webhook(services.pool, principal.org_id, str(endpoint_id))
    if view is None:
        raise problem(404, "not-found", "webhook endpoint not found")
    return _shown(view)


@patch(
    "/webhooks/{endpoint_id:uuid}",
    operation_id="updateWebhook",
    summary="Change a webhook endpoint",
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 409, 413, 503),
    tags=_TAGS,
)
async def update(
    request: AuthRequest,
    services: Deps,
    endpoint_id: FromPath[uuid.UUID],
    data: JSONBody[ChangeWebhookBody],
) -> Response[Webhook]:
    """`enabled: true` turns an endpoint that was disabled (by a user, or after 24 hours of
    failed deliveries) back on; it receives the events logged from then on."""
    if isinstance(data.url, str):
        _check_url(services, data.url)
    if isinstance(data.events, list):
        _check_events(data.events)
    events = sorted(set(data.events)) if isinstance(data.events, list) else msgspec.UNSET
    command = webhook.ChangeWebhook(
        url=data.url, events=events, description=data.description, enabled=data.enabled
    )
    outcome = await _execute(services, request, str(endpoint_id), command)
    shown = await _current(services, request, str(endpoint_id))
    return Response(shown, headers=position_header(outcome.position))


@delete(
    "/webhooks/{endpoint_id:uuid}",
    operation_id="deleteWebhook",
    summary="Delete a webhook endpoint",
    status_code=204,
    opt=MANAGE,
    responses=problems(401, 403, 404, 503),
    tags=_TAGS,
)
async def remove(request: AuthRequest, services: Deps, endpoint_id: FromPath[uuid.UUID]) -> None:
    """Nothing more is delivered to it, and its signing secrets are erased for good."""
    await _execute(services, request, str(endpoint_id), webhook.DeleteWebhook())
    await services.vault.forget(webhook_stream(str(endpoint_id)))


@post(
    "/webhooks/{endpoint_id:uuid}/rotate-secret",
    operation_id="rotateWebhookSecret",
    summary="Rotate a webhook endpoint's signing secret",
    status_code=200,
    opt=MANAGE,
    responses=problems(401, 403, 404, 503),
    tags=_TAGS,
)
async def rotate_secret(
    request: AuthRequest, services: Deps, endpoint_id: FromPath[uuid.UUID]
) -> Response[RotatedSecret]:
    """The new secret, shown once. For 24 hours deliveries carry a signature with the old
    secret too (`webhook-signature: v1,<new> v1,<old>`), so receivers can switch over."""
    stream_id = webhook_stream(str(endpoint_id))
    secret = new_secret()
    sealed = await services.vault.seal(stream_id, secret)
    command = webhook.RotateWebhookSecret(secret=sealed, grace=SECRET_GRACE)
    outcome = await _execute(services, request, str(endpoint_id), command)
    rotated = next(e for e in outcome.events if isinstance(e, WebhookSecretRotated))
    body = RotatedSecret(secret=secret, previous_secret_valid_until=rotated.previous_valid_until)
    return Response(body, headers=position_header(outcome.position))


@get(
    "/webhooks/{endpoint_id:uuid}/deliveries",
    operation_id="listWebhookDeliveries",
    summary="The latest deliveries of a webhook endpoint, with every attempt",
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 503),
    tags=_TAGS,
)
async def deliveries(
    request: AuthRequest,
    services: Deps,
    endpoint_id: FromPath[uuid.UUID],
    limit: Limit = 50,
) -> DeliveryList:
    """Newest first. Each attempt: outcome (`delivered`, `failed` for an HTTP error status,
    `timeout`, `network`, `refused` for an address webhooks may not reach), status code,
    latency and the first KiB of the response."""
    principal = request.user
    await _current(services, request, str(endpoint_id))
    found = await list_deliveries(services.pool, principal.org_id, str(endpoint_id), limit)
    return DeliveryList(
        deliveries=[msgspec.convert(d, Delivery, from_attributes=True) for d in found]
    )


@post(
    "/webhooks/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
    operation_id="redeliverWebhook",
    summary="Send one delivery again",
    status_code=202,
    opt=MANAGE,
    responses=problems(401, 403, 404, 409, 503),
    tags=_TAGS,
)
async def redeliver(
    request: AuthRequest,
    services: Deps,
    endpoint_id: FromPath[uuid.UUID],
    delivery_id: FromPath[uuid.UUID],
) -> Response[None]:
    """Sent again with the same `webhook-id`, whatever became of it (409 while the endpoint
    is disabled)."""
    org_id = request.user.org_id
    if not await delivery_exists(services.pool, org_id, str(endpoint_id), str(delivery_id)):
        raise problem(404, "not-found", "no such delivery of this webhook endpoint")
    command = webhook.RequestRedelivery(delivery_id=str(delivery_id))
    outcome = await _execute(services, request, str(endpoint_id), command)
    return Response(None, status_code=202, headers=position_header(outcome.position))


async def _execute(
    services: Services, request: AuthRequest, endpoint_id: str, command: webhook.WebhookCommand
) -> Outcome:
    try:
        outcome = await execute_command(
            services.store,
            webhook_stream(endpoint_id),
            webhook.fold,
            webhook.decide,
            command,
            datetime.now(UTC),
            metadata_for(request),
        )
    except webhook.WebhookNotFound as e:
        raise problem(404, "not-found", str(e)) from e
    except webhook.WebhookDisabled as e:
        raise problem(409, "webhook-disabled", str(e)) from e
    services.reads.wrote(request.user, outcome.position)
    return outcome


async def _current(services: Services, request: AuthRequest, endpoint_id: str) -> Webhook:
    missing = problem(404, "not-found", "webhook endpoint not found")
    stream_id = webhook_stream(endpoint_id)
    return _shown(await as_written(services.store, WEBHOOKS, stream_id, request.user, missing))


def _shown(view: WebhookView) -> Webhook:
    return msgspec.convert(view, Webhook, from_attributes=True)


def _check_url(services: Services, url: str) -> None:
    """Refused here: a scheme other than https (http only to allowed networks) and literal
    addresses webhooks may not reach. A host name is checked on every delivery, when it is
    resolved (its answer may change)."""
    allowed = parse_networks(services.settings.webhook_allowed_networks)
    policy = WebhookAddresses(NetworkPolicy(allowed=allowed, denied=PRIVATE_NETWORKS))
    found = url_problem(url, policy)
    if found is not None:
        raise InvalidRequest(FieldError("url", found))


def _check_events(names: list[str]) -> None:
    unknown = sorted(set(names) - set(EVENT_NAMES))
    if unknown:
        raise InvalidRequest(
            FieldError("events", f"unknown: {', '.join(unknown)}; known: {', '.join(EVENT_NAMES)}")
        )
