"""How an event looks on NATS: subject, headers and payload (shared by relay and republish)."""

from __future__ import annotations

import re
from typing import Final

import msgspec

from events.catalog import stream_type
from events.store import RecordedEvent

_UNSAFE_TOKEN: Final = re.compile(r"[^A-Za-z0-9_-]")


class _OrgOnly(msgspec.Struct):
    org_id: str = "unknown"


_org_decoder = msgspec.json.Decoder(_OrgOnly)


class WireEvent(msgspec.Struct, frozen=True, rename="camel"):
    """The JSON payload of a published event."""

    event_id: str
    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int
    recorded_at: str
    data: msgspec.Raw
    metadata: msgspec.Raw


_encoder = msgspec.json.Encoder()


def subject_token(value: str) -> str:
    """A NATS subject token: no dots, wildcards or spaces can leak in from data."""
    return _UNSAFE_TOKEN.sub("_", value) or "_"


def subject_for(prefix: str, event: RecordedEvent) -> str:
    org = _org_decoder.decode(event.metadata).org_id
    return ".".join(
        (
            prefix,
            "events",
            subject_token(org),
            subject_token(stream_type(event.stream_id)),
            subject_token(event.event_type),
        )
    )


def headers_for(event: RecordedEvent) -> dict[str, str]:
    return {
        "Nats-Msg-Id": str(event.event_id),
        "Odoofleet-Position": str(event.position),
        "Odoofleet-Stream-Id": event.stream_id,
        "Odoofleet-Version": str(event.version),
        "Odoofleet-Event-Type": event.event_type,
    }


def payload_for(event: RecordedEvent) -> bytes:
    return _encoder.encode(
        WireEvent(
            event_id=str(event.event_id),
            position=event.position,
            stream_id=event.stream_id,
            version=event.version,
            type=event.event_type,
            schema_version=event.schema_version,
            recorded_at=event.recorded_at.isoformat(),
            data=msgspec.Raw(event.data.encode()),
            metadata=msgspec.Raw(event.metadata.encode()),
        )
    )


def decode_wire(payload: bytes) -> WireEvent:
    return msgspec.json.decode(payload, type=WireEvent)
