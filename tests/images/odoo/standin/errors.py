"""The exceptions Odoo's RPC reports by their qualified name (`data.name` of a JSON-RPC error)."""

from __future__ import annotations


class OdooError(Exception):
    qualified_name = "odoo.exceptions.UserError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccessDenied(OdooError):
    qualified_name = "odoo.exceptions.AccessDenied"

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)


class AccessError(OdooError):
    qualified_name = "odoo.exceptions.AccessError"


class MissingError(OdooError):
    qualified_name = "odoo.exceptions.MissingError"


class ValidationError(OdooError):
    qualified_name = "odoo.exceptions.ValidationError"


class InvalidValue(OdooError):
    """A bad argument: Odoo lets Python's own ValueError escape."""

    qualified_name = "builtins.ValueError"


class UnknownModel(OdooError):
    qualified_name = "builtins.KeyError"


class UnknownMethod(OdooError):
    qualified_name = "builtins.AttributeError"
