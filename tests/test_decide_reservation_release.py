"""Releasing a removed instance's slug, host name and host ports, given / when / then over
events, with no database."""

from __future__ import annotations

from commands.reservation import (
    ReleaseReservations,
    decide_ports_release,
    decide_slug_release,
    decide_subdomain_release,
    fold_ports,
    fold_slug,
    fold_subdomain,
    slug_history,
)
from events.reservation import (
    PortsReleased,
    PortsReserved,
    SlugReleased,
    SlugReserved,
    SubdomainReleased,
    SubdomainReserved,
)

RELEASE = ReleaseReservations(
    instance_id="i1", slug="shop", subdomain="shop.odoo.example", server_id="s1"
)


def ports_of(instance_id: str, http: int) -> PortsReserved:
    return PortsReserved(
        instance_id=instance_id, http_port_host=http, longpolling_port_host=http + 1
    )


def test_a_held_slug_is_released() -> None:
    state = fold_slug([SlugReserved(slug="shop", instance_id="i1")])

    assert decide_slug_release(RELEASE, state) == [SlugReleased(slug="shop", instance_id="i1")]


def test_a_slug_released_already_is_not_released_again() -> None:
    state = fold_slug(
        [SlugReserved(slug="shop", instance_id="i1"), SlugReleased(slug="shop", instance_id="i1")]
    )

    assert decide_slug_release(RELEASE, state) == []


def test_a_slug_another_instance_took_since_is_left_alone() -> None:
    state = fold_slug(
        [
            SlugReserved(slug="shop", instance_id="i1"),
            SlugReleased(slug="shop", instance_id="i1"),
            SlugReserved(slug="shop", instance_id="i2"),
        ]
    )

    assert decide_slug_release(RELEASE, state) == []


def test_a_slug_held_under_its_legacy_stream_is_released() -> None:
    legacy = [SlugReserved(slug="shop", instance_id="i1")]

    state = fold_slug(slug_history("shop", legacy, []))

    assert decide_slug_release(RELEASE, state) == [SlugReleased(slug="shop", instance_id="i1")]


def test_a_held_host_name_is_released() -> None:
    state = fold_subdomain([SubdomainReserved(subdomain="shop.odoo.example", instance_id="i1")])

    assert decide_subdomain_release(RELEASE, state) == [
        SubdomainReleased(subdomain="shop.odoo.example", instance_id="i1")
    ]


def test_a_host_name_never_reserved_has_nothing_to_release() -> None:
    assert decide_subdomain_release(RELEASE, fold_subdomain([])) == []


def test_a_host_name_held_by_another_instance_is_left_alone() -> None:
    state = fold_subdomain([SubdomainReserved(subdomain="shop.odoo.example", instance_id="i2")])

    assert decide_subdomain_release(RELEASE, state) == []


def test_the_instance_s_host_ports_are_released_and_the_others_kept() -> None:
    state = fold_ports([ports_of("i1", 20000), ports_of("i2", 20002)])

    assert decide_ports_release(RELEASE, state) == [PortsReleased(instance_id="i1")]


def test_host_ports_released_already_are_not_released_again() -> None:
    state = fold_ports([ports_of("i1", 20000), PortsReleased(instance_id="i1")])

    assert decide_ports_release(RELEASE, state) == []
