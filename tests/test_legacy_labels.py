"""A process asks once whether any legacy slug reservation is held; with none, creates skip
the query for good (no legacy reservation is made any more)."""

from __future__ import annotations

from events.legacy_reservations import LegacyLabels
from events.metadata import Actor, EventMetadata
from events.reservation import SlugReleased, SlugReserved, legacy_slug_stream, slug_stream
from events.store import NO_STREAM, EventStore

META = EventMetadata(actor=Actor("test", "Test"), org_id="org-a", correlation_id="c")


async def test_a_held_legacy_reservation_is_found_by_its_label(store: EventStore) -> None:
    reserved = SlugReserved(slug="shop", instance_id="old")
    await store.append(legacy_slug_stream("org-a", "shop"), NO_STREAM, [reserved], META)

    assert await LegacyLabels().held(store, {"shop", "other"}) == {"shop"}


async def test_a_released_legacy_reservation_holds_nothing(store: EventStore) -> None:
    reserved = SlugReserved(slug="shop", instance_id="old")
    await store.append(legacy_slug_stream("org-a", "shop"), NO_STREAM, [reserved], META)
    released = SlugReleased(slug="shop", instance_id="old")
    await store.append(slug_stream("org-a", "shop"), NO_STREAM, [released], META)

    assert await LegacyLabels().held(store, {"shop"}) == set()


async def test_with_none_held_the_process_stops_asking(store: EventStore) -> None:
    legacy = LegacyLabels()
    assert await legacy.held(store, {"shop"}) == set()

    # Nothing writes one any more; written anyway, it is not looked for again.
    reserved = SlugReserved(slug="shop", instance_id="old")
    await store.append(legacy_slug_stream("org-a", "shop"), NO_STREAM, [reserved], META)

    assert await legacy.held(store, {"shop"}) == set()
    assert await LegacyLabels().held(store, {"shop"}) == {"shop"}
