"""The per-instance Odoo tools: arguments checked, the model allowlist applied, one
`execute_kw` through the instance's JSON-RPC, results paginated and cut to a prompt's size."""

from __future__ import annotations

from typing import Annotated, Any, Final

import mcp_types as types
import msgspec

from api.mcp.policy import DEFAULT_POLICY, Access, ModelPolicy, check
from api.mcp.results import fitted, shortened, success
from api.mcp.tools import OdooOperation
from workers.odoo.jsonrpc import OdooRpc, OdooTarget

DEFAULT_LIMIT: Final = 20
DEFAULT_FIELDS: Final = ["display_name"]
_Model = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", max_length=128)]
_Ids = Annotated[list[int], msgspec.Meta(min_length=1, max_length=100)]
_Fields = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=128)]], msgspec.Meta(max_length=100)
]
_Offset = Annotated[int, msgspec.Meta(ge=0)]
_Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]


class _Args(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class SearchRead(_Args, frozen=True):
    model: _Model
    domain: Annotated[list[Any], msgspec.Meta(max_length=50)] = []
    fields: _Fields | None = None
    offset: _Offset = 0
    limit: _Limit = DEFAULT_LIMIT
    order: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_, ]*$", max_length=200)] | None = None


class Read(_Args, frozen=True):
    model: _Model
    ids: _Ids
    fields: _Fields | None = None


class FieldsGet(_Args, frozen=True):
    model: _Model


class ListModels(_Args, frozen=True):
    search: Annotated[str, msgspec.Meta(max_length=100)] = ""
    offset: _Offset = 0
    limit: _Limit = 50


class Create(_Args, frozen=True):
    model: _Model
    values: dict[str, Any]


class Write(_Args, frozen=True):
    model: _Model
    ids: _Ids
    values: dict[str, Any]


class Unlink(_Args, frozen=True):
    model: _Model
    ids: _Ids


_ARGS: Final[dict[OdooOperation, type[_Args]]] = {
    "search_read": SearchRead,
    "read": Read,
    "fields_get": FieldsGet,
    "list_models": ListModels,
    "create": Create,
    "write": Write,
    "unlink": Unlink,
}
_ACCESS: Final[dict[OdooOperation, Access]] = {
    "search_read": "read",
    "read": "read",
    "fields_get": "read",
    "list_models": "read",
    "create": "write",
    "write": "write",
    "unlink": "unlink",
}


def parse(operation: OdooOperation, arguments: dict[str, Any]) -> _Args:
    """Raises msgspec.ValidationError with the field at fault."""
    return msgspec.convert(arguments, _ARGS[operation])


async def run(
    rpc: OdooRpc,
    target: OdooTarget,
    operation: OdooOperation,
    args: _Args,
    *,
    budget: int,
    policy: ModelPolicy = DEFAULT_POLICY,
) -> types.CallToolResult:
    """Raises ModelRefused, OdooRefused or OdooUnreachable for the caller to turn into a
    tool error."""
    model = getattr(args, "model", "ir.model")
    check(policy, model, _ACCESS[operation])
    match args:
        case SearchRead():
            return await _search(rpc, target, args, budget)
        case ListModels():
            domain = [["model", "ilike", args.search]] if args.search else []
            search = SearchRead(
                model="ir.model",
                domain=domain,
                fields=["model", "name"],
                offset=args.offset,
                limit=args.limit,
                order="model",
            )
            return await _search(rpc, target, search, budget)
        case Read():
            fields = args.fields or DEFAULT_FIELDS
            found = await rpc.execute_kw(target, model, "read", [args.ids], {"fields": fields})
            records, cut = fitted(shortened(found), budget)
            return success({"model": model, "records": records, "truncated": cut})
        case FieldsGet():
            attributes = ["string", "type", "required", "readonly", "relation"]
            found = await rpc.execute_kw(
                target, model, "fields_get", [], {"attributes": attributes}
            )
            described = [{"name": name, **spec} for name, spec in sorted(found.items())]
            kept, cut = fitted(described, budget)
            return success({"model": model, "fields": kept, "truncated": cut})
        case Create():
            created = await rpc.execute_kw(target, model, "create", [args.values])
            return success({"model": model, "id": created})
        case Write():
            done = await rpc.execute_kw(target, model, "write", [args.ids, args.values])
            return success({"model": model, "ids": args.ids, "written": bool(done)})
        case Unlink():
            done = await rpc.execute_kw(target, model, "unlink", [args.ids])
            return success({"model": model, "ids": args.ids, "deleted": bool(done)})
    raise AssertionError(f"no Odoo tool for {type(args).__name__}")


async def _search(
    rpc: OdooRpc, target: OdooTarget, args: SearchRead, budget: int
) -> types.CallToolResult:
    """One more record than asked tells whether a next page exists."""
    keywords: dict[str, Any] = {
        "fields": args.fields or DEFAULT_FIELDS,
        "offset": args.offset,
        "limit": args.limit + 1,
    }
    if args.order:
        keywords["order"] = args.order
    found = await rpc.execute_kw(target, args.model, "search_read", [args.domain], keywords)
    page = shortened(found[: args.limit])
    records, cut = fitted(page, budget)
    more = cut or len(found) > args.limit
    return success(
        {
            "model": args.model,
            "records": records,
            "offset": args.offset,
            "limit": args.limit,
            "nextOffset": args.offset + len(records) if more else None,
            "truncated": cut,
        }
    )
