"""Which Odoo models a tool may touch, and how much a result may hold.

The default allowlist (ISSUE 18): every model may be read except the ones holding secrets;
`ir.*` and `res.users` are never written through MCP; accounting records are never unlinked
(an assistant must not erase the books: Odoo itself only cancels or reverses them)."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Final, Literal, TypeAlias

from events.instance import McpModelAccess

Access = Literal["read", "write", "unlink"]

# Secrets an assistant has no business reading, even with the instance's full read access.
_NEVER_READ: Final = ("res.users.apikeys*", "ir.config_parameter", "ir.attachment")
_NEVER_WRITE: Final = ("ir.*", "res.users", "res.users.*", "res.groups", "base.*")
_NEVER_UNLINK: Final = ("account.*",)


# An instance's own allowlist (PATCH mcpModelAccess; fnmatch globs of the models each kind of
# access allows); the fixed refusals above hold whatever it says.
ModelPolicy: TypeAlias = McpModelAccess


DEFAULT_POLICY: Final = ModelPolicy()


class ModelRefused(Exception):
    def __init__(self, model: str, access: Access) -> None:
        self.model = model
        self.access = access
        super().__init__(f"{access} access to the model {model!r} is not allowed through MCP")


def _any(model: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(model, pattern) for pattern in patterns)


def allows(policy: ModelPolicy, model: str, access: Access) -> bool:
    if access == "read":
        return _any(model, policy.read) and not _any(model, _NEVER_READ)
    if _any(model, _NEVER_READ) or _any(model, _NEVER_WRITE) or not _any(model, policy.write):
        return False
    return access == "write" or (_any(model, policy.unlink) and not _any(model, _NEVER_UNLINK))


def check(policy: ModelPolicy, model: str, access: Access) -> None:
    if not allows(policy, model, access):
        raise ModelRefused(model, access)
