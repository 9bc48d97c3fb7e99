"""The tools a caller's session is offered right now: platform tools by permission, Odoo tools
for each running instance it may reach (write tools only where MCP write access is on)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import mcp_types as types
import msgspec

from api.auth import Principal
from api.mcp.naming import prefixes
from api.mcp.tools import (
    AUDIT_QUERY,
    ODOO_READS,
    ODOO_WRITES,
    PLATFORM_READS,
    PLATFORM_WRITES,
    OdooOperation,
    odoo_tool,
)
from events.pool import Pool
from projections.instances import InstanceView, list_instances

# A session lists at most this many instances' tools (each instance adds up to 7 tools).
MAX_INSTANCES: Final = 200
_PAGE: Final = 100


class PlatformTool(msgspec.Struct, frozen=True):
    name: str
    writes: bool


class OdooTool(msgspec.Struct, frozen=True):
    name: str
    instance_id: str
    slug: str
    operation: OdooOperation

    @property
    def writes(self) -> bool:
        return self.operation in ODOO_WRITES


ToolRef = PlatformTool | OdooTool


@dataclass(frozen=True, slots=True)
class Catalog:
    tools: tuple[types.Tool, ...]
    refs: dict[str, ToolRef]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.refs)


def may_write(principal: Principal) -> bool:
    return principal.may("manage:instances") and not principal.mcp_read_only


def mcp_reaches(principal: Principal, instance_id: str) -> bool:
    """The key's instance scope and, narrower still, its MCP scope."""
    scope = principal.mcp_instance_ids
    return principal.reaches(instance_id) and (scope is None or instance_id in scope)


def org_wide(principal: Principal) -> bool:
    return principal.instance_ids is None and principal.mcp_instance_ids is None


async def reachable_instances(pool: Pool, principal: Principal) -> list[InstanceView]:
    """The organization's instances this caller may reach through MCP, newest first."""
    found: list[InstanceView] = []
    cursor: str | None = None
    while len(found) < MAX_INSTANCES:
        page, cursor = await list_instances(
            pool, principal.org_id, server_id=None, status=None, limit=_PAGE, cursor=cursor
        )
        found += [view for view in page if mcp_reaches(principal, view.id)]
        if cursor is None:
            break
    return found[:MAX_INSTANCES]


def catalog(
    principal: Principal, instances: list[InstanceView], *, every_write: bool = False
) -> Catalog:
    """`every_write`: as if every write were allowed — to tell why a tool is refused."""
    if not principal.may("view:instances"):
        return Catalog((), {})
    tools = list(PLATFORM_READS)
    if principal.may("view:audit") and org_wide(principal):
        tools.append(AUDIT_QUERY)
    writer = every_write or may_write(principal)
    if writer:
        tools += PLATFORM_WRITES
    refs: dict[str, ToolRef] = {
        tool.name: PlatformTool(tool.name, writes=tool in PLATFORM_WRITES) for tool in tools
    }
    running = [view for view in instances if view.status == "running"]
    named = prefixes((view.id, view.slug) for view in running)
    for view in running:
        enabled = every_write or view.mcp_write_enabled
        operations = ODOO_READS + (ODOO_WRITES if writer and enabled else ())
        for operation in operations:
            tool = odoo_tool(named[view.id], view.slug, operation)
            tools.append(tool)
            refs[tool.name] = OdooTool(tool.name, view.id, view.slug, operation)
    return Catalog(tuple(tools), refs)
