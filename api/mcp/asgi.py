"""/api/mcp: the SDK's Streamable HTTP session manager mounted in the Litestar app, behind
api/auth.py's authentication (the same bearer JWT or API key, checked on every request)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final

from litestar import Litestar
from litestar.handlers import asgi
from litestar.types import Receive, Scope, Send
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from api.auth import Principal, needs
from api.config import ApiConfig
from api.mcp.server import PRINCIPAL_KEY, McpRuntime, build_server
from api.rate_limit import RateLimit
from api.services import Services
from workers.odoo.jsonrpc import OdooRpc
from workers.odoo.tunnel import loopback_opener
from workers.ssh.runner import SshRunner

SSH_CONNECT_TIMEOUT: Final = 10.0


class McpEndpoint:
    """Hands each authenticated request to the session manager. A session stays bound to the
    caller that opened it (the SDK answers another caller's request for it with 404)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal: Principal = scope["user"]
        owner = AccessToken(
            token="-",  # noqa: S106  (not a secret: the session owner, for the SDK's check)
            client_id=principal.user_id,
            scopes=[],
            subject=principal.user_id,
            claims={"iss": principal.org_id},
        )
        inner = dict(scope)
        inner["user"] = AuthenticatedUser(owner)
        inner[PRINCIPAL_KEY] = principal
        await self._manager.handle_request(inner, receive, send)  # type: ignore[arg-type]


@asgi("/mcp", is_mount=True, copy_scope=True, opt=needs("view:instances"), include_in_schema=False)
async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    endpoint: McpEndpoint = scope["app"].state.mcp
    await endpoint(scope, receive, send)


def mcp_lifespan(settings: ApiConfig) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Runs the session manager for as long as the app (after the Services exist)."""

    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        services: Services = app.state.services
        runner = SshRunner(policy=services.server_addresses)
        runtime = McpRuntime(
            services=services,
            rpc=OdooRpc(loopback_opener(runner), timeout=settings.mcp_odoo_timeout),
            limits=RateLimit(settings.mcp_calls_per_minute),
            result_budget=settings.mcp_result_max_bytes,
            connect_timeout=SSH_CONNECT_TIMEOUT,
        )
        manager = StreamableHTTPSessionManager(
            app=build_server(runtime), session_idle_timeout=settings.mcp_session_idle_timeout
        )
        async with manager.run():
            app.state.mcp = McpEndpoint(manager)
            app.state.mcp_runtime = runtime
            try:
                yield
            finally:
                await runner.close()

    return run
