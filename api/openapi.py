"""The OpenAPI 3.1 document (/schema/openapi.json) and its interactive page (/schema)."""

from __future__ import annotations

from typing import Final

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag

BEARER: Final = "BearerToken"

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
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(path="/")],
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
            Tag(name="probes", description="Liveness and readiness (no token)"),
        ],
    )
