"""The tools an MCP session may be offered: their names, descriptions and input schemas."""

from __future__ import annotations

from typing import Any, Final, Literal

import mcp_types as types

from api.mcp.naming import PLATFORM_PREFIX

OdooOperation = Literal[
    "search_read", "read", "fields_get", "list_models", "create", "write", "unlink"
]
ODOO_READS: Final[tuple[OdooOperation, ...]] = ("search_read", "read", "fields_get", "list_models")
ODOO_WRITES: Final[tuple[OdooOperation, ...]] = ("create", "write", "unlink")

_ID: Final = {"type": "string", "format": "uuid", "description": "The instance's id"}
_MODEL: Final = {"type": "string", "description": "Odoo model, e.g. res.partner"}
_FIELDS: Final = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Fields to return (default: a few; name them to keep results small)",
}
_IDS: Final = {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 100}


def _schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def _tool(name: str, description: str, schema: dict[str, Any], *, read_only: bool) -> types.Tool:
    return types.Tool(
        name=name,
        description=description,
        input_schema=schema,
        annotations=types.ToolAnnotations(read_only_hint=read_only, destructive_hint=not read_only),
    )


PLATFORM_READS: Final = (
    _tool(
        f"{PLATFORM_PREFIX}_list_instances",
        "List the organization's Odoo instances (filters as GET /api/instances).",
        _schema(
            {
                "serverId": {"type": "string", "format": "uuid"},
                "status": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                "cursor": {"type": "string", "description": "nextCursor of the previous page"},
            }
        ),
        read_only=True,
    ),
    _tool(
        f"{PLATFORM_PREFIX}_get_instance",
        "One instance: status, version, host name, ports, health score.",
        _schema({"instanceId": _ID}, ("instanceId",)),
        read_only=True,
    ),
    _tool(
        f"{PLATFORM_PREFIX}_get_health",
        "An instance's latest health observation and its health score with every factor.",
        _schema({"instanceId": _ID}, ("instanceId",)),
        read_only=True,
    ),
    _tool(
        f"{PLATFORM_PREFIX}_list_operations",
        "An instance's operations (provisioning, start/stop, redeploys), newest first.",
        _schema({"instanceId": _ID}, ("instanceId",)),
        read_only=True,
    ),
)
AUDIT_QUERY: Final = _tool(
    f"{PLATFORM_PREFIX}_query_audit",
    "Search the organization's audit trail (filters as GET /api/audit-logs).",
    _schema(
        {
            "resourceType": {"type": "string"},
            "resourceId": {"type": "string"},
            "action": {"type": "string"},
            "page": {"type": "integer", "minimum": 1},
            "perPage": {"type": "integer", "minimum": 1, "maximum": 50},
        }
    ),
    read_only=True,
)
PLATFORM_WRITES: Final = (
    _tool(
        f"{PLATFORM_PREFIX}_control_instance",
        "Start, stop or restart an instance (only where its MCP write access is enabled).",
        _schema(
            {"instanceId": _ID, "action": {"type": "string", "enum": ["start", "stop", "restart"]}},
            ("instanceId", "action"),
        ),
        read_only=False,
    ),
    _tool(
        f"{PLATFORM_PREFIX}_update_instance",
        "Rename an instance or change its addons path (only where its MCP write access is"
        " enabled); mcpWriteEnabled can only be turned off from here.",
        _schema(
            {
                "instanceId": _ID,
                "name": {"type": "string", "minLength": 1, "maxLength": 100},
                "addonsPath": {"type": ["string", "null"]},
                "mcpWriteEnabled": {"type": "boolean", "const": False},
            },
            ("instanceId",),
        ),
        read_only=False,
    ),
)

_DOMAIN: Final = {
    "type": "array",
    "description": 'Odoo domain, e.g. [["is_company", "=", true]]',
    "items": {},
}
_ODOO: Final[dict[OdooOperation, tuple[str, dict[str, Any]]]] = {
    "search_read": (
        "Search records of a model; paginated (offset/limit, nextOffset in the result).",
        _schema(
            {
                "model": _MODEL,
                "domain": _DOMAIN,
                "fields": _FIELDS,
                "offset": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "order": {"type": "string", "maxLength": 200},
            },
            ("model",),
        ),
    ),
    "read": (
        "Read records of a model by id.",
        _schema({"model": _MODEL, "ids": _IDS, "fields": _FIELDS}, ("model", "ids")),
    ),
    "fields_get": (
        "The fields of a model: name, type, label, relation.",
        _schema({"model": _MODEL}, ("model",)),
    ),
    "list_models": (
        "The models installed (ir.model), paginated; filter by a substring of the name.",
        _schema(
            {
                "search": {"type": "string", "maxLength": 100},
                "offset": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            }
        ),
    ),
    "create": (
        "Create one record; answers its id.",
        _schema({"model": _MODEL, "values": {"type": "object"}}, ("model", "values")),
    ),
    "write": (
        "Change records by id.",
        _schema(
            {"model": _MODEL, "ids": _IDS, "values": {"type": "object"}}, ("model", "ids", "values")
        ),
    ),
    "unlink": (
        "Delete records by id.",
        _schema({"model": _MODEL, "ids": _IDS}, ("model", "ids")),
    ),
}


def odoo_tool(prefix: str, slug: str, operation: OdooOperation) -> types.Tool:
    description, schema = _ODOO[operation]
    return _tool(
        f"{prefix}_{operation}",
        f"Odoo instance {slug}: {description}",
        schema,
        read_only=operation in ODOO_READS,
    )
