"""The Litestar application: `create_app(settings)` builds it; the lifespan opens the pool."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from litestar import Litestar, Request, Router
from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from api import (
    routes_admin_credentials,
    routes_api_keys,
    routes_audit,
    routes_backup_destinations,
    routes_backups,
    routes_domains,
    routes_events_stream,
    routes_instance_reads,
    routes_instances,
    routes_mcp_credentials,
    routes_servers,
    routes_webhooks,
)
from api.auth import BearerAuthentication, TokenVerifier
from api.config import ApiConfig
from api.console import health_history
from api.console.routes import SECURITY_HEADERS, page, static_files
from api.errors import FieldError, InvalidRequest, problem_details_plugin
from api.integrations import integrations
from api.mcp.asgi import mcp_endpoint, mcp_lifespan
from api.metrics_http import HttpMetrics
from api.openapi import BEARER, openapi_config
from api.request_ids import with_request_ids
from api.routes_metrics import metrics
from api.routes_probes import healthz, readyz
from api.services import lifespan, provide_services
from commands.defaults import DEFAULT_HOST_PORTS, HostPorts
from events.pool import Pool
from events.secrets import master_key_from

MAX_BODY_BYTES: Final = 1 << 20
_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})


def create_app(
    settings: ApiConfig,
    *,
    pool: Pool | None = None,
    host_ports: HostPorts = DEFAULT_HOST_PORTS,
) -> Litestar:
    """The app for `settings`. With `pool`, the caller owns the pool (tests, `odoofleet dev`);
    otherwise the app opens its own when it starts and closes it when it stops. A missing
    JWT key or secret key is refused here, before anything listens."""
    master_key_from(settings.secret_key)
    api = Router(
        path="/api",
        route_handlers=[
            routes_instance_reads.list_all,
            routes_instances.create,
            routes_instance_reads.get_one,
            routes_instances.update,
            routes_instances.remove,
            routes_instances.control,
            routes_instance_reads.health,
            routes_instance_reads.health_score,
            routes_instance_reads.operations,
            routes_instance_reads.events,
            routes_admin_credentials.reveal,
            routes_admin_credentials.rotate,
            routes_mcp_credentials.rotate_credentials,
            routes_servers.list_all,
            routes_servers.register,
            routes_servers.get_one,
            routes_servers.remove,
            routes_servers.validate,
            routes_audit.audit_logs,
            routes_webhooks.list_all,
            routes_webhooks.create,
            routes_webhooks.get_one,
            routes_webhooks.update,
            routes_webhooks.remove,
            routes_webhooks.rotate_secret,
            routes_webhooks.deliveries,
            routes_webhooks.redeliver,
            routes_events_stream.stream,
            routes_api_keys.create,
            routes_api_keys.list_all,
            routes_api_keys.revoke,
            routes_domains.list_all,
            routes_domains.add,
            routes_domains.verify,
            routes_domains.make_primary,
            routes_domains.remove,
            routes_backups.create,
            routes_backups.list_all,
            routes_backups.get_one,
            routes_backups.remove,
            routes_backups.restore,
            routes_backups.set_schedule,
            routes_backups.download,
            routes_backup_destinations.list_all,
            routes_backup_destinations.create,
            routes_backup_destinations.remove,
            health_history.health_history,
            mcp_endpoint,
        ],
        middleware=[DefineMiddleware(BearerAuthentication, verifier=TokenVerifier(settings))],
        before_request=_json_only,
        security=[{BEARER: []}],
    )
    http_metrics = HttpMetrics()
    app = Litestar(
        route_handlers=[api, healthz, readyz, metrics, page, static_files()],
        response_headers=SECURITY_HEADERS,
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "http_metrics": Provide(lambda: http_metrics, sync_to_thread=False),
        },
        lifespan=[
            lifespan(settings, pool, host_ports),
            integrations(settings),
            mcp_lifespan(settings),
        ],
        plugins=[problem_details_plugin()],
        openapi_config=openapi_config(_version()),
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
    )
    # Around Litestar's own handler, so requests that match no route are measured and tagged.
    app.asgi_handler = with_request_ids(http_metrics.wrap(app.asgi_handler))
    return app


async def _json_only(request: Request[Any, Any, Any]) -> None:
    """A body must be JSON: anything else is refused before it is read. NUL characters are
    refused anywhere: PostgreSQL cannot store them in text, and nothing needs them."""
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise InvalidRequest(FieldError(name, "must not contain NUL characters"))
    if request.method not in _WITH_BODY:
        return
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    media_type = request.content_type[0]
    if has_body and not (media_type == "application/json" or media_type.endswith("+json")):
        raise InvalidRequest(FieldError("Content-Type", "the body must be application/json"))


def _version() -> str:
    try:
        return version("odoofleet")
    except PackageNotFoundError:
        return "0.0.0"
