"""The ids of the work in progress (request, correlation, operation, server), carried by a
context variable so every log line written inside the work names them. It sits in events/,
the package every layer already imports, so the API and the workers set it without
depending on the composition root that formats the lines (odoofleet/logs.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

CONTEXT_FIELDS: Final = ("request_id", "correlation_id", "operation_id", "server_id")
_context: ContextVar[dict[str, str]] = ContextVar("odoofleet_log_context", default={})  # noqa: B039


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add `fields` to every log line written inside the block (also in tasks it starts)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def current(field: str) -> str | None:
    return _context.get().get(field)


def current_fields() -> dict[str, str]:
    return _context.get()
