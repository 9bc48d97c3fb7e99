"""The console's pages and files: every page path answers the same shell, whose script
(static/app.js) draws the page from the JSON API with the token kept in sessionStorage."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Final

from litestar import MediaType, Response, Router, get
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.static_files import create_static_files_router

STATIC_PATH: Final = "/console/static"

# No inline script or style, nothing from another origin, no framing; the token travels in
# the Authorization header only, so writes need no CSRF token (no ambient credential).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# On every response of the app: the console's pages, its files, /schema and the API.
SECURITY_HEADERS: Final = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
]


async def with_security_headers(response: Response[object]) -> Response[object]:
    """SECURITY_HEADERS on a file response too (app-level headers do not reach those)."""
    for header in SECURITY_HEADERS:
        response.headers.setdefault(header.name, header.value or "")
    return response


def static_dir() -> Path:
    return Path(str(files("api.console") / "static"))


@cache
def _shell() -> bytes:
    return (static_dir() / "shell.html").read_bytes()


@get(
    ["/", "/login", "/servers", "/audit", "/instances/{instance_id:str}"],
    include_in_schema=False,
    media_type=MediaType.HTML,
    cache_control=CacheControlHeader(no_cache=True),
)
async def page() -> bytes:
    """The shell of every console page."""
    return _shell()


def static_files() -> Router:
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[static_dir()],
        name="console-static",
        cache_control=CacheControlHeader(no_cache=True),
        after_request=with_security_headers,
    )
