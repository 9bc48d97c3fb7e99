"""What an operation concluded, as its instance's or server's decider records it."""

from __future__ import annotations

from typing import TypeAlias

import msgspec


class Succeeded(msgspec.Struct, frozen=True):
    pass


class FailedAt(msgspec.Struct, frozen=True):
    """`step` is None when the failure belongs to no step (e.g. a server's validation)."""

    step: str | None
    message: str


OperationOutcome: TypeAlias = Succeeded | FailedAt
