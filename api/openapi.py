"""The OpenAPI 3.1 document (/schema/openapi.json) and its interactive page (/schema)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Final

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from api.console.routes import with_security_headers

BEARER: Final = "BearerToken"
SCHEMA_PATH: Final = "/schema"
ASSETS_PATH: Final = "/assets"  # Swagger UI's files, under SCHEMA_PATH

_DESCRIPTION: Final = """\
The control plane for hosting Odoo on your own servers. Every accepted write becomes events
in an append-only log; reads are served from read models built from it.

* Every `/api` call needs `Authorization: Bearer <JWT>` with the claims `sub`, `org`,
  `permissions` (`view:<resource>` / `manage:<resource>`, manage implies view) and `exp`.
* Errors are `application/problem+json` (RFC 9457); validation errors list
  `errors: [{field, message}]`.
* A write answers with `X-Position`; a read sent with `X-Min-Position` waits (up to 2 s)
  until the read models have caught up with it. Reads by the same caller right after its
  own write wait automatically.
"""


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="odoofleet",
        version=version,
        description=_DESCRIPTION,
        path=SCHEMA_PATH,
        render_plugins=[OfflineSwaggerUI()],
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="A JWT signed with the configured key (HS256, RS256 or ES256)",
                )
            }
        ),
        tags=[
            Tag(name="instances", description="Odoo instances and their lifecycle"),
            Tag(name="servers", description="The Linux servers instances run on"),
            Tag(name="audit", description="Who changed what, when"),
            Tag(name="domains", description="Custom domains and their certificates"),
            Tag(name="backups", description="Encrypted backups, restores, schedules, destinations"),
            Tag(name="probes", description="Liveness and readiness (no token)"),
        ],
    )


class OfflineSwaggerUI(OpenAPIRenderPlugin):
    """Swagger UI at /schema from the assets of the `swagger-ui-bundle-v2` package, served by
    odoofleet itself: the page works with no network, and with no inline script (the console's
    Content-Security-Policy applies to it too), so its start-up lives in schema.js."""

    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        return _PAGE.format(
            title=title,
            assets=SCHEMA_PATH + ASSETS_PATH,
            spec=escape(self.get_openapi_json_route(request)),
        ).encode()

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path=ASSETS_PATH,
                directories=[Path(str(swagger_ui_path))],
                name="swagger-ui-assets",
                cache_control=CacheControlHeader(max_age=3600),
                after_request=with_security_headers,
            )
        )


_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  <link rel="icon" href="/console/static/favicon.svg">
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <script src="{assets}/swagger-ui-bundle.js" defer></script>
  <script src="/console/static/schema.js" defer></script>
</head>
<body>
  <div id="swagger-ui" data-spec="{spec}"></div>
</body>
</html>
"""
