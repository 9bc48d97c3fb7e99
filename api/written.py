"""A write's answer: the resource as the write left it, and the header to read it back by."""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

from api.auth import Principal
from api.web import POSITION_HEADER
from events.store import EventStore
from projections.runtime.fold import Folder, Row, fold_stream

R = TypeVar("R", bound=Row)


@runtime_checkable
class _Owned(Protocol):
    @property
    def org_id(self) -> str: ...


async def as_written(
    store: EventStore, folder: Folder[R], stream_id: str, principal: Principal, missing: Exception
) -> R:
    """The row folded from its own stream by the read model's Folder: exact right after a
    write, without waiting for the projection (reads wait for it instead: consistency.py).
    Absent, or another organization's: `missing` is raised."""
    view = await fold_stream(store, folder, stream_id)
    if not isinstance(view, _Owned) or view.org_id != principal.org_id:
        raise missing
    return view


def position_header(position: int | None) -> dict[str, str]:
    """`X-Position` for a write that appended (a write that changed nothing has none)."""
    return {} if position is None else {POSITION_HEADER: str(position)}
