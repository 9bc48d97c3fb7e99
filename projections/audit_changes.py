"""What an audit entry shows of a change: the whole state around a creation or a deletion,
otherwise only the fields that changed; secrets masked either way (API.md, "Audit trail"), and
a webhook's URL cut to where it points."""

from __future__ import annotations

from functools import cache
from itertools import compress
from operator import is_not
from typing import Any, Final, get_args, get_type_hints
from urllib.parse import urlsplit

import msgspec

from events.secrets import Sealed, mask_sealed
from projections.instances import HEALTH_FIELDS
from projections.runtime.fold import Row
from projections.webhooks import WebhookView

State = dict[str, Any]

# Not part of what a person changed: bookkeeping, and fields from other read models.
_UNSHOWN: Final = frozenset({"version", "updated_at", *HEALTH_FIELDS})


def changes(before: Row | None, after: Row | None) -> tuple[State | None, State | None]:
    """(before, after) of one event, for its audit entry."""
    if before is None or after is None:
        return _whole(before), _whole(after)
    # Rows evolve by msgspec.structs.replace, so a field an event left alone is the very same
    # object before and after: compare (deeply) only the others, picked in C.
    olds, news = msgspec.structs.astuple(before), msgspec.structs.astuple(after)
    changed = [
        (name, olds[i], news[i])
        for name, i in compress(_indexed_fields(type(after)), map(is_not, olds, news))
        if name not in _UNSHOWN and olds[i] != news[i]
    ]
    return (
        _masked(type(after), {name: old for name, old, _ in changed}),
        _masked(type(after), {name: new for name, _, new in changed}),
    )


@cache
def _fields(kind: type[Row]) -> tuple[str, ...]:
    return tuple(field.name for field in msgspec.structs.fields(kind))


@cache
def _indexed_fields(kind: type[Row]) -> tuple[tuple[str, int], ...]:
    return tuple((name, i) for i, name in enumerate(_fields(kind)))


@cache
def _secret_fields(kind: type[Row]) -> frozenset[str]:
    """The fields whose type can hold a sealed value (only those need masking)."""
    return frozenset(name for name, hint in get_type_hints(kind).items() if _holds_sealed(hint))


def _holds_sealed(hint: Any) -> bool:
    if hint is Sealed:
        return True
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return any(_holds_sealed(inner) for inner in get_type_hints(hint).values())
    return any(_holds_sealed(arg) for arg in get_args(hint))


def _whole(row: Row | None) -> State | None:
    if row is None:
        return None
    values = zip(_fields(type(row)), msgspec.structs.astuple(row), strict=True)
    return _masked(type(row), {name: value for name, value in values if name not in _UNSHOWN})


def _masked(kind: type[Row], values: State) -> State:
    plain: State = msgspec.to_builtins(values)
    for name in _secret_fields(kind) & plain.keys():
        plain[name] = mask_sealed(plain[name])
    for name in _ADDRESSES.get(kind, frozenset()) & plain.keys():
        plain[name] = _origin(plain[name])
    return plain


# A webhook's URL may be its credential (a chat service's incoming-webhook path, a token in
# the query): whoever may read the audit trail (view:audit) sees only where it points, while
# GET /api/webhooks (manage:webhooks) shows it whole.
_ADDRESSES: Final[dict[type[Row], frozenset[str]]] = {WebhookView: frozenset({"url"})}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    rest = "/…" if parts.path not in ("", "/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host}{rest}"
