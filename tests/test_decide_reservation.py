"""The slug, host name and host-port reservation deciders, given / when / then over events."""

from __future__ import annotations

import itertools

import pytest

from commands.refusals import NoFreePorts, SlugTaken
from commands.reservation import (
    ReservePorts,
    ReserveSlug,
    ReserveSubdomain,
    SubdomainsTaken,
    SubdomainState,
    decide_ports,
    decide_slug,
    decide_subdomain,
    fold_ports,
    fold_slug,
    fold_subdomain,
    slug_history,
    subdomain_labels,
)
from events.reservation import (
    PortsReleased,
    PortsReserved,
    SlugReleased,
    SlugReserved,
    SubdomainReleased,
    SubdomainReserved,
    legacy_slug_stream,
    slug_stream,
)

INSTANCE = "6f1c2b9e-0d3a-4c5b-8e7f-123456789abc"


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


def test_an_organization_and_slug_split_elsewhere_at_a_hyphen_get_another_stream() -> None:
    assert legacy_slug_stream("acme-corp", "shop") == legacy_slug_stream("acme", "corp-shop")

    assert slug_stream("acme-corp", "shop") != slug_stream("acme", "corp-shop")


def test_every_organization_and_slug_pair_has_its_own_stream_and_no_legacy_id() -> None:
    parts = ["a", "b", "a-b", "b-a", "a-b-a", "x", "a--b", "-a", "a-"]
    orgs = [*parts, "a b", "a:b", "a.b", "é-a", '"a', "a\\"]
    pairs = list(itertools.product(orgs, parts))

    ids = {slug_stream(org, slug) for org, slug in pairs}
    legacy = {legacy_slug_stream(org, slug) for org, slug in pairs}

    assert len(ids) == len(pairs)
    assert len(legacy) < len(pairs)  # the old encoding mixed pairs up
    assert ids.isdisjoint(legacy)
    assert all(stream_id.count("-") == 1 for stream_id in ids)


def test_a_legacy_stream_s_events_about_another_slug_do_not_count() -> None:
    shared = [
        SlugReserved(slug="shop", instance_id="theirs"),  # acme-corp's, in slug-acme-corp-shop
    ]

    state = fold_slug(slug_history("corp-shop", shared, []))

    assert state.holder is None


def test_a_legacy_reservation_holds_until_its_release_on_the_new_stream() -> None:
    legacy = [SlugReserved(slug="shop", instance_id="old")]

    held = fold_slug(slug_history("shop", legacy, []))
    released = fold_slug(
        slug_history("shop", legacy, [SlugReleased(slug="shop", instance_id="old")])
    )

    assert held.holder == "old"
    assert released.holder is None


def hosts(slug: str = "shop", org: str = "org-b") -> list[str]:
    return [f"{label}.odoo.test" for label in subdomain_labels(slug, org, INSTANCE)]


def test_the_first_instance_with_a_slug_gets_the_slug_as_host_name() -> None:
    events = decide_subdomain(ReserveSubdomain(candidates=hosts(), instance_id="i1"), {})

    assert events == [SubdomainReserved(subdomain="shop.odoo.test", instance_id="i1")]


def test_a_host_name_held_by_another_instance_goes_to_the_next_candidate() -> None:
    plain, org_hash, _ = hosts()
    states = {plain: fold_subdomain([SubdomainReserved(subdomain=plain, instance_id="i1")])}

    events = decide_subdomain(ReserveSubdomain(candidates=hosts(), instance_id="i2"), states)

    assert events == [SubdomainReserved(subdomain=org_hash, instance_id="i2")]


def test_a_host_name_held_by_an_instance_from_before_reservations_is_skipped() -> None:
    plain, org_hash, _ = hosts()

    events = decide_subdomain(
        ReserveSubdomain(candidates=hosts(), instance_id="i2"),
        {plain: fold_subdomain([], by_legacy=True)},
    )

    assert events == [SubdomainReserved(subdomain=org_hash, instance_id="i2")]


def test_a_released_host_name_may_be_reserved_again() -> None:
    plain = hosts()[0]
    history = [
        SubdomainReserved(subdomain=plain, instance_id="i1"),
        SubdomainReleased(subdomain=plain, instance_id="i1"),
    ]

    events = decide_subdomain(
        ReserveSubdomain(candidates=hosts(), instance_id="i2"), {plain: fold_subdomain(history)}
    )

    assert events == [SubdomainReserved(subdomain=plain, instance_id="i2")]


def test_when_every_host_name_is_held_the_refusal_names_none_of_them() -> None:
    taken = {host: SubdomainState("someone") for host in hosts()}

    with pytest.raises(SubdomainsTaken) as refused:
        decide_subdomain(ReserveSubdomain(candidates=hosts(), instance_id="i2"), taken)

    assert "shop" not in str(refused.value)


def test_organizations_with_one_slug_get_different_second_choices() -> None:
    seconds = {hosts(org=org)[1] for org in ("acme", "acme-corp", "org-a", "org-b")}

    assert len(seconds) == 4


def test_every_label_of_the_longest_slug_fits_in_a_dns_label() -> None:
    longest = "a" * 49 + "z"

    assert all(len(label) <= 63 for label in subdomain_labels(longest, "org", INSTANCE))
