"""Who did it, for which organization, and why: the metadata carried by every event."""

from __future__ import annotations

from typing import Literal

import msgspec

ActorKind = Literal["user", "system"]


class Actor(msgspec.Struct, frozen=True):
    id: str
    name: str
    kind: ActorKind = "user"


class EventMetadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Metadata stored beside every event (DESIGN.md, "Event store").

    correlation_id ties a request to everything it caused (the request id or operation id);
    causation_id names the command or event that directly caused this one.
    """

    actor: Actor
    org_id: str
    correlation_id: str
    causation_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


def system_actor(worker: str) -> Actor:
    return Actor(id=f"system:{worker}", name=worker, kind="system")
