"""The MCP server's two handlers (tools/list, tools/call) over the official SDK's low-level
Server: tools computed per call for the caller, `tools/list_changed` when they changed since
the session last saw them, every call recorded in the audit trail, calls rate-limited per key."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import mcp_types as types
import msgspec
from litestar.plugins.problem_details import ProblemDetailsException
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER as SESSION_HEADER
from starlette.requests import Request

from api.auth import Principal
from api.mcp import odoo_calls
from api.mcp.catalog import Catalog, OdooTool, PlatformTool, catalog, may_write, reachable_instances
from api.mcp.odoo_access import OdooUnavailable, odoo_access
from api.mcp.platform_calls import PLATFORM, Call, Done
from api.mcp.policy import ModelRefused
from api.mcp.results import refusal
from api.rate_limit import RateLimit
from api.services import Services
from commands.mcp import RecordToolCall, record_tool_call
from events.mcp import ToolOutcome
from events.metadata import Actor, EventMetadata
from workers.odoo.jsonrpc import OdooRefused, OdooRpc, OdooUnreachable

PRINCIPAL_KEY: Final = "odoofleet.principal"
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Seen:
    """What a session was last shown, and its id in the audit trail."""

    session_id: str
    names: frozenset[str] | None = None


class Sessions:
    """What each open session was last shown, by its Mcp-Session-Id (which the SDK's
    session manager has checked belongs to this caller). The oldest are forgotten beyond
    `capacity`: a forgotten session is only not told of a change once."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._capacity = capacity

    def of(self, ctx: ServerRequestContext[Any, Any]) -> _Seen:
        request = ctx.request
        given = request.headers.get(SESSION_HEADER) if isinstance(request, Request) else None
        try:
            session_id = str(uuid.UUID(hex=given)) if given else None
        except ValueError:
            session_id = None
        if session_id is None:
            # No session (stateless or modern era): nothing to remember between calls.
            return _Seen(str(uuid.uuid4()))
        found = self._seen.pop(session_id, None) or _Seen(session_id)
        self._seen[session_id] = found
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return found


@dataclass(frozen=True, slots=True)
class McpRuntime:
    services: Services
    rpc: OdooRpc
    limits: RateLimit
    result_budget: int
    connect_timeout: float
    sessions: Sessions = field(default_factory=Sessions)

    async def catalog(self, principal: Principal, *, every_write: bool = False) -> Catalog:
        await self.services.reads.before_read(principal, None, ("instances",))
        instances = await reachable_instances(self.services.pool, principal)
        return catalog(principal, instances, every_write=every_write)


def principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """Put there by api/mcp/asgi.py after api/auth.py authenticated this very request."""
    request = ctx.request
    if not isinstance(request, Request) or PRINCIPAL_KEY not in request.scope:
        raise PermissionError("an MCP request without an authenticated caller")
    found: Principal = request.scope[PRINCIPAL_KEY]
    return found


def _metadata(ctx: ServerRequestContext[Any, Any], principal: Principal) -> EventMetadata:
    request = ctx.request
    client = request.client if isinstance(request, Request) else None
    agent = request.headers.get("user-agent") if isinstance(request, Request) else None
    return EventMetadata(
        actor=Actor(id=principal.user_id, name=principal.user_name),
        org_id=principal.org_id,
        correlation_id=str(uuid.uuid4()),
        client_ip=client.host if client else None,
        user_agent=agent[:512] if agent else None,
    )


class _Server(Server[Any]):
    """Announces `tools.listChanged`: the tools of a session follow the instances."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


def build_server(runtime: McpRuntime) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal = principal_of(ctx)
        found = await runtime.catalog(principal)
        runtime.sessions.of(ctx).names = found.names
        return types.ListToolsResult(tools=list(found.tools))

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        principal = principal_of(ctx)
        seen = runtime.sessions.of(ctx)
        try:
            runtime.limits.take(principal.user_id, "MCP tool calls")
        except ProblemDetailsException as e:
            # Not recorded: a flood of refused calls would otherwise flood the log.
            return refusal(f"rate limited: {e.detail}")
        found = await runtime.catalog(principal)
        if seen.names is not None and seen.names != found.names:
            # On this call's own stream: the client hears it whether or not it holds a GET.
            await ctx.session.send_notification(
                types.ToolListChangedNotification(), related_request_id=ctx.request_id
            )
        seen.names = found.names
        arguments = dict(params.arguments or {})
        done, instance, outcome = await _called(
            runtime, ctx, principal, found, params.name, arguments
        )
        await record_tool_call(
            runtime.services.store,
            RecordToolCall(
                session_id=seen.session_id,
                tool=params.name[:200],
                instance_id=None if instance is None else instance[0],
                instance_slug=None if instance is None else instance[1],
                arguments=arguments,
                outcome=outcome,
                message=_text(done) if outcome != "succeeded" else None,
            ),
            now=datetime.now(UTC),
            metadata=_metadata(ctx, principal),
        )
        return done

    return _Server(
        "odoofleet",
        version="1",
        instructions=(
            "Operate odoofleet's Odoo instances. Platform tools are named odoofleet_*; each"
            " running instance has tools named <slug>_search_read, _read, _fields_get,"
            " _list_models (and _create, _write, _unlink where its MCP write access is on)."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _text(result: types.CallToolResult) -> str | None:
    for item in result.content:
        if isinstance(item, types.TextContent):
            return item.text
    return None


async def _called(
    runtime: McpRuntime,
    ctx: ServerRequestContext[Any, Any],
    principal: Principal,
    found: Catalog,
    name: str,
    arguments: dict[str, Any],
) -> tuple[types.CallToolResult, tuple[str, str] | None, ToolOutcome]:
    ref = found.refs.get(name)
    if ref is None:
        return await _refused(runtime, principal, name)
    try:
        if isinstance(ref, PlatformTool):
            done = await _platform(runtime, ctx, principal, ref, arguments)
            instance = None if done.instance is None else (done.instance.id, done.instance.slug)
            return done.result, instance, "refused" if done.result.is_error else "succeeded"
        return (
            await _odoo(runtime, principal, ref, arguments),
            (ref.instance_id, ref.slug),
            "succeeded",
        )
    except msgspec.ValidationError as e:
        return refusal(f"invalid arguments: {e}"), _about(ref), "refused"
    except ModelRefused as e:
        return refusal(str(e)), _about(ref), "refused"
    except OdooRefused as e:
        return refusal(f"Odoo refused: {e.message} ({e.name})"), _about(ref), "failed"
    except (OdooUnreachable, OdooUnavailable) as e:
        return refusal(f"Odoo cannot be reached: {e}"), _about(ref), "failed"
    except Exception as e:  # a refusal of a decider (409-like) or a read model that is down
        log.warning("MCP tool %s failed: %s", name, e)
        return refusal(f"{name} failed: {e}"), _about(ref), "failed"


def _about(ref: PlatformTool | OdooTool) -> tuple[str, str] | None:
    return (ref.instance_id, ref.slug) if isinstance(ref, OdooTool) else None


async def _refused(
    runtime: McpRuntime, principal: Principal, name: str
) -> tuple[types.CallToolResult, tuple[str, str] | None, ToolOutcome]:
    """A tool this session may not call now: say why, as precisely as the caller may know."""
    would = (await runtime.catalog(principal, every_write=True)).refs.get(name)
    if would is None:
        return refusal(f"unknown tool {name!r} (the tool list may have changed)"), None, "refused"
    about = _about(would)
    if not may_write(principal):
        reason = (
            "this API key is read-only for MCP"
            if principal.mcp_read_only
            else "writing needs the manage:instances permission"
        )
    else:
        reason = "MCP write access is disabled for this instance (mcpWriteEnabled is false)"
    return refusal(f"{name} is not available: {reason}"), about, "refused"


async def _platform(
    runtime: McpRuntime,
    ctx: ServerRequestContext[Any, Any],
    principal: Principal,
    ref: PlatformTool,
    arguments: dict[str, Any],
) -> Done:
    shape, handler = PLATFORM[ref.name]
    args = msgspec.convert(arguments, shape)
    call = Call(
        principal=principal,
        services=runtime.services,
        metadata=_metadata(ctx, principal),
        budget=runtime.result_budget,
    )
    return await handler(call, args)


async def _odoo(
    runtime: McpRuntime, principal: Principal, ref: OdooTool, arguments: dict[str, Any]
) -> types.CallToolResult:
    args = odoo_calls.parse(ref.operation, arguments)
    services = runtime.services
    access = await odoo_access(
        services.store, services.vault, principal.org_id, ref.instance_id, runtime.connect_timeout
    )
    return await odoo_calls.run(
        runtime.rpc,
        access.target,
        ref.operation,
        args,
        budget=runtime.result_budget,
        policy=access.models,
    )
