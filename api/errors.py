"""Every error mapped to HTTP in ONE table, as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Final

import msgspec
import psycopg
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from api.auth import Forbidden, Unauthenticated
from commands.domain import AutoDomainKept, DomainNotFound
from commands.domain_name import DomainTaken, InvalidDomainName
from commands.refusals import (
    ActionNotAllowed,
    AdminPasswordUnknown,
    ConcurrentModification,
    InstanceNotFound,
    NoFreePorts,
    RemovalNotFailed,
    ServerHasInstances,
    ServerNotFound,
    ServerNotUsable,
    SlugTaken,
    VersionMismatch,
)
from events.secrets import StreamForgotten
from projections.runtime.errors import InvalidCursor

log = logging.getLogger(__name__)


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An error response, application/problem+json (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


class InvalidRequest(Exception):
    """A request that fails a check the body's types cannot express (→ 400)."""

    def __init__(self, *errors: FieldError) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


class Unavailable(Exception):
    """Something the request depends on cannot answer now (→ 503, retry)."""


class NotReady(Exception):
    """A readiness probe found dependencies down (→ 503 naming each one's state)."""

    def __init__(self, checks: dict[str, str]) -> None:
        self.checks = checks
        down = ", ".join(name for name, state in checks.items() if state != "ok")
        super().__init__(f"not ready: {down} unreachable")


class IdempotencyKeyReused(Exception):
    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request")


class IdempotencyKeyInFlight(Exception):
    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed")


def problem(
    status: int,
    name: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    **members: object,
) -> ProblemDetailsException:
    """A problem response; `members` are RFC 9457 extension members."""
    extra = dict(members)
    if errors:
        extra["errors"] = [msgspec.to_builtins(e) for e in errors]
    return ProblemDetailsException(
        status_code=status,
        type_=f"urn:odoofleet:problem:{name}",
        title=HTTPStatus(status).phrase,
        detail=detail,
        extra=extra or None,
        headers=headers,
    )


def _unauthenticated(e: Unauthenticated) -> ProblemDetailsException:
    # RFC 6750 §3: say which scheme to use; name the error only when a token was sent.
    challenge = 'Bearer realm="odoofleet"'
    if e.token_given:
        challenge += ', error="invalid_token"'
    return problem(401, "unauthenticated", e.reason, headers={"WWW-Authenticate": challenge})


def _database_down(e: psycopg.OperationalError) -> ProblemDetailsException:
    log.warning("PostgreSQL is not available: %s", e)
    return problem(
        503, "unavailable", "the database is not available; retry", headers={"Retry-After": "2"}
    )


_NAMED_FIELD: Final = re.compile(r"(unknown|missing required) field `([^`]*)`")
_INDEX: Final = re.compile(r"\[[^\]]*\]")


def _invalid(e: ValidationException) -> ProblemDetailsException:
    """Litestar's validation messages, as `errors: [{field, message}]`."""
    found = e.extra if isinstance(e.extra, list) else []
    errors = [_field_error(item) for item in found if isinstance(item, Mapping)]
    return problem(400, "invalid-request", "the request is not valid", errors=errors or None)


def _field_error(item: Mapping[str, Any]) -> FieldError:
    message = str(item.get("message", "invalid value"))
    field = _INDEX.sub("", str(item.get("key", "body")))
    if named := _NAMED_FIELD.search(message):
        kind, name = named.groups()
        return FieldError(name, "unknown field" if kind == "unknown" else "required")
    if field == "data":
        return FieldError("body", "a JSON object body is required")
    return FieldError(field, message)


def _http(e: HTTPException) -> ProblemDetailsException:
    status = HTTPStatus(e.status_code)
    detail = e.detail if e.detail and e.detail != status.phrase else status.description
    return problem(
        e.status_code, status.phrase.lower().replace(" ", "-"), detail, headers=e.headers
    )


def _internal(e: Exception) -> ProblemDetailsException:
    log.error("unhandled error", exc_info=e)
    return problem(500, "internal-error", "an unexpected error occurred")


# fmt: off
PROBLEMS: Final[dict[type[Exception], Callable[[Any], ProblemDetailsException]]] = {
    InvalidRequest: lambda e: problem(400, "invalid-request", str(e), errors=e.errors),
    ServerNotUsable: lambda e: problem(
        400, "invalid-request", str(e), errors=[FieldError("serverId", e.reason)]
    ),
    InvalidCursor: lambda e: problem(
        400, "invalid-request", "invalid cursor", errors=[FieldError("cursor", str(e))]
    ),
    InvalidDomainName: lambda e: problem(
        400, "invalid-request", str(e), errors=[FieldError("domain", str(e))]
    ),
    ValidationException: _invalid,
    Unauthenticated: _unauthenticated,
    Forbidden: lambda e: problem(403, "forbidden", str(e)),
    InstanceNotFound: lambda e: problem(404, "not-found", str(e)),
    ServerNotFound: lambda e: problem(404, "not-found", str(e)),
    DomainNotFound: lambda e: problem(404, "not-found", str(e)),
    AutoDomainKept: lambda e: problem(409, "auto-domain", str(e)),
    ActionNotAllowed: lambda e: problem(409, "action-not-allowed", str(e)),
    RemovalNotFailed: lambda e: problem(409, "removal-not-failed", str(e)),
    AdminPasswordUnknown: lambda e: problem(409, "admin-password-unknown", str(e)),
    SlugTaken: lambda e: problem(
        409, "slug-taken", str(e), errors=[FieldError("slug", "already used")]
    ),
    DomainTaken: lambda e: problem(
        409, "domain-taken", str(e), errors=[FieldError("domain", "already in use")]
    ),
    ServerHasInstances: lambda e: problem(409, "server-has-instances", str(e)),
    NoFreePorts: lambda e: problem(409, "no-free-ports", str(e)),
    ConcurrentModification: lambda e: problem(409, "concurrent-modification", str(e)),
    StreamForgotten: lambda _: problem(409, "secrets-forgotten", "its secrets were erased"),
    IdempotencyKeyInFlight: lambda e: problem(409, "idempotency-key-in-flight", str(e)),
    VersionMismatch: lambda e: problem(412, "precondition-failed", str(e)),
    IdempotencyKeyReused: lambda e: problem(422, "idempotency-key-reused", str(e)),
    Unavailable: lambda e: problem(503, "unavailable", str(e), headers={"Retry-After": "1"}),
    NotReady: lambda e: problem(503, "not-ready", str(e), checks=e.checks),
    psycopg.OperationalError: _database_down,
    HTTPException: _http,
    Exception: _internal,
}
# fmt: on


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_to_problem_detail_map=PROBLEMS))
