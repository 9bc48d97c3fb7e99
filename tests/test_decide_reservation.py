"""The slug and host-port reservation deciders, given / when / then over events."""

from __future__ import annotations

import pytest

from commands.refusals import NoFreePorts, SlugTaken
from commands.reservation import (
    ReservePorts,
    ReserveSlug,
    decide_ports,
    decide_slug,
    fold_ports,
    fold_slug,
)
from events.reservation import PortsReleased, PortsReserved, SlugReleased, SlugReserved


def reserve(first: int = 20000, last: int = 20009) -> ReservePorts:
    return ReservePorts(server_id="s", instance_id="new", first=first, last=last)


def held(instance_id: str, http: int, longpolling: int) -> PortsReserved:
    return PortsReserved(
        instance_id=instance_id, http_port_host=http, longpolling_port_host=longpolling
    )


def test_a_free_slug_is_reserved_for_the_instance() -> None:
    events = decide_slug(ReserveSlug(slug="acme", instance_id="i1"), fold_slug([]))

    assert events == [SlugReserved(slug="acme", instance_id="i1")]


def test_a_reserved_slug_is_taken() -> None:
    state = fold_slug([SlugReserved(slug="acme", instance_id="i1")])

    with pytest.raises(SlugTaken):
        decide_slug(ReserveSlug(slug="acme", instance_id="i2"), state)


def test_a_released_slug_may_be_reserved_again() -> None:
    history = [
        SlugReserved(slug="acme", instance_id="i1"),
        SlugReleased(slug="acme", instance_id="i1"),
    ]

    events = decide_slug(ReserveSlug(slug="acme", instance_id="i2"), fold_slug(history))

    assert events == [SlugReserved(slug="acme", instance_id="i2")]


def test_the_first_instance_on_a_server_gets_the_first_two_ports() -> None:
    assert decide_ports(reserve(), fold_ports([])) == [held("new", 20000, 20001)]


def test_ports_in_use_are_skipped() -> None:
    state = fold_ports([held("a", 20000, 20001), held("b", 20002, 20004)])

    assert decide_ports(reserve(), state) == [held("new", 20003, 20005)]


def test_released_ports_are_handed_out_again() -> None:
    state = fold_ports(
        [held("a", 20000, 20001), held("b", 20002, 20003), PortsReleased(instance_id="a")]
    )

    assert decide_ports(reserve(), state) == [held("new", 20000, 20001)]


def test_a_full_range_is_refused() -> None:
    state = fold_ports([held("a", 20000, 20001), held("b", 20002, 20003)])

    with pytest.raises(NoFreePorts):
        decide_ports(reserve(20000, 20004), state)
