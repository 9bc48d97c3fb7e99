"""The domain decider, given / when / then over events: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from commands.domain import (
    AddDomain,
    AutoDomainKept,
    DomainNotFound,
    MakePrimary,
    RecordCertificate,
    RecordCertificateFailed,
    RecordVerificationFailed,
    RecordVerified,
    RemoveDomain,
    RequestCertificate,
    VerifyDomain,
    decide,
    fold,
)
from commands.domain_name import (
    DomainTaken,
    InvalidDomainName,
    ReleaseDomainName,
    ReserveDomainName,
    decide_release,
    decide_reserve,
    fold_domain_name,
    normalize_domain,
)
from events.domain import (
    CertificateFailed,
    CertificateIssued,
    CertificateRenewed,
    CertificateRequested,
    DomainAdded,
    DomainNameReleased,
    DomainNameReserved,
    DomainRemoved,
    DomainVerificationFailed,
    DomainVerificationRequested,
    DomainVerified,
    PrimaryDomainChanged,
)
from events.registry import DomainEvent
from events.secrets import Sealed

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
IDS = {"domain_id": "d1", "instance_id": "i1"}


def given(*events: DomainEvent) -> list[DomainEvent]:
    return list(events)


def added() -> list[DomainEvent]:
    return decide(
        AddDomain(domain_id="d1", instance_id="i1", domain="shop.example.com", request_id="r1"),
        fold(()),
        NOW,
    )


def verified() -> list[DomainEvent]:
    history = added()
    return history + decide(
        RecordVerified(request_id="r1", addresses=["203.0.113.7"], certificate_request_id="c1"),
        fold(history),
        NOW,
    )


def certificate(expires_at: datetime = NOW + timedelta(days=90)) -> RecordCertificate:
    return RecordCertificate(
        request_id="c1",
        certificate=Sealed("v1:cert"),
        private_key=Sealed("v1:key"),
        expires_at=expires_at,
    )


def test_adding_a_domain_asks_for_its_dns_check() -> None:
    events = added()

    assert [type(e) for e in events] == [DomainAdded, DomainVerificationRequested]
    assert events[1] == DomainVerificationRequested(
        **IDS, request_id="r1", attempt=1, first_requested_at=NOW
    )


def test_a_passed_check_verifies_the_domain_and_orders_its_first_certificate() -> None:
    events = verified()[2:]

    assert [type(e) for e in events] == [DomainVerified, CertificateRequested]
    assert events[1] == CertificateRequested(**IDS, request_id="c1", renewal=False)


def test_an_outcome_recorded_once_decides_nothing_the_second_time() -> None:
    history = verified()

    again = decide(
        RecordVerified(request_id="r1", addresses=["203.0.113.7"], certificate_request_id="c9"),
        fold(history),
        NOW,
    )

    assert again == []


def test_a_failed_check_carries_the_answer_and_the_next_check_time() -> None:
    history = added()

    events = decide(
        RecordVerificationFailed(request_id="r1", message="no A record"), fold(history), NOW
    )

    assert events == [
        DomainVerificationFailed(
            **IDS,
            request_id="r1",
            message="no A record",
            retry_at=NOW + timedelta(seconds=60),
            attempt=1,
            first_requested_at=NOW,
        )
    ]


def test_retries_back_off_and_end_after_24_hours() -> None:
    history = added()
    at = NOW
    pauses = []
    for n in range(1, 40):
        failed = decide(
            RecordVerificationFailed(request_id=f"r{n}", message="no"), fold(history), at
        )
        history += failed
        retry_at = failed[0].retry_at  # type: ignore[attr-defined]
        if retry_at is None:
            break
        pauses.append((retry_at - at).total_seconds())
        at = retry_at
        history += decide(VerifyDomain(request_id=f"r{n + 1}", retry=True), fold(history), at)
    else:
        pytest.fail("the retries never ended")

    assert pauses[:5] == [60, 300, 900, 1800, 3600]
    assert at - NOW <= timedelta(hours=24)
    assert decide(VerifyDomain(request_id="late", retry=True), fold(history), at) == []


def test_asking_to_verify_again_starts_a_new_series_of_checks() -> None:
    history = added()
    history += decide(RecordVerificationFailed(request_id="r1", message="no"), fold(history), NOW)
    later = NOW + timedelta(days=2)

    events = decide(VerifyDomain(request_id="r2"), fold(history), later)

    assert events == [
        DomainVerificationRequested(**IDS, request_id="r2", attempt=1, first_requested_at=later)
    ]


def test_a_check_already_running_answers_a_second_request() -> None:
    assert decide(VerifyDomain(request_id="r2"), fold(added()), NOW) == []


def test_the_first_certificate_is_issued_and_a_later_one_renews_it() -> None:
    history = verified()
    first = decide(certificate(), fold(history), NOW)
    history += first
    history += decide(RequestCertificate(request_id="c2"), fold(history), NOW)

    renewal = decide(
        RecordCertificate(
            request_id="c2",
            certificate=Sealed("v1:cert2"),
            private_key=Sealed("v1:key2"),
            expires_at=NOW + timedelta(days=180),
        ),
        fold(history),
        NOW,
    )

    assert [type(e) for e in first] == [CertificateIssued]
    assert history[-1] == CertificateRequested(**IDS, request_id="c2", renewal=True)
    assert [type(e) for e in renewal] == [CertificateRenewed]


def test_a_second_order_while_one_runs_decides_nothing() -> None:
    assert decide(RequestCertificate(request_id="c2"), fold(verified()), NOW) == []


def test_no_certificate_is_ordered_for_a_domain_not_verified() -> None:
    assert decide(RequestCertificate(request_id="c2"), fold(added()), NOW) == []


def test_a_rate_limited_order_waits_hours_before_the_next() -> None:
    events = decide(
        RecordCertificateFailed(request_id="c1", reason="rateLimited", rate_limited=True),
        fold(verified()),
        NOW,
    )

    assert events == [
        CertificateFailed(
            **IDS,
            request_id="c1",
            reason="rateLimited",
            rate_limited=True,
            retry_at=NOW + timedelta(hours=6),
            failed_at=NOW,
        )
    ]


def test_a_certificate_arriving_after_the_removal_is_not_recorded() -> None:
    history = verified()
    history += decide(RemoveDomain(), fold(history), NOW)

    assert decide(certificate(), fold(history), NOW) == []


def test_a_removed_domain_is_not_found() -> None:
    history = added()
    history += decide(RemoveDomain(), fold(history), NOW)

    assert history[-1] == DomainRemoved(**IDS, domain="shop.example.com", removed_at=NOW)
    with pytest.raises(DomainNotFound):
        decide(RemoveDomain(), fold(history), NOW)
    with pytest.raises(DomainNotFound):
        decide(MakePrimary(), fold(history), NOW)


def test_making_a_domain_primary_names_its_instance() -> None:
    assert decide(MakePrimary(), fold(added()), NOW) == [PrimaryDomainChanged(**IDS)]


def test_a_name_held_by_another_domain_is_taken() -> None:
    held = fold_domain_name([DomainNameReserved(domain="x.example", domain_id="d1")])

    with pytest.raises(DomainTaken):
        decide_reserve(ReserveDomainName(domain="x.example", domain_id="d2"), held)
    assert decide_reserve(ReserveDomainName(domain="x.example", domain_id="d1"), held) == []


def test_a_released_name_can_be_reserved_again_and_released_once() -> None:
    history = given(
        DomainNameReserved(domain="x.example", domain_id="d1"),
        DomainNameReleased(domain="x.example", domain_id="d1"),
    )
    release = ReleaseDomainName(domain="x.example", domain_id="d1")

    assert decide_release(release, fold_domain_name(history)) == []
    assert decide_reserve(
        ReserveDomainName(domain="x.example", domain_id="d2"), fold_domain_name(history)
    ) == [DomainNameReserved(domain="x.example", domain_id="d2")]


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Shop.Example.COM", "shop.example.com"),
        ("shop.example.com.", "shop.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c-d.example", "a-b.c-d.example"),
    ],
)
def test_names_are_normalized(raw: str, normal: str) -> None:
    assert normalize_domain(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "localhost",
        "*.example.com",
        "192.0.2.1",
        "2001:db8::1",
        "[2001:db8::1]",
        "a..example",
        "-a.example",
        "a-.example",
        "a_b.example",
        "x" * 64 + ".example",
        ".".join(["a" * 63] * 4) + ".com",
        "example.123",
    ],
)
def test_names_that_are_not_domains_are_refused(raw: str) -> None:
    with pytest.raises(InvalidDomainName):
        normalize_domain(raw)


def test_the_public_addresses_are_the_global_source_addresses_of_the_routes() -> None:
    from workers.acme.public_address import parse_routes

    output = (
        "192.0.2.1 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0 \\    cache\n"
        "2001:db8::1 from :: via fe80::1 dev eth0 src 2a01:4f8:1:2::5 metric 1024 pref medium\n"
    )

    assert parse_routes(output) == {6: "2a01:4f8:1:2::5"}  # 10.0.0.5 is private
    assert parse_routes("198.51.100.0 dev eth0 src 203.0.113.9 uid 0") == {}  # documentation
    assert parse_routes("x dev eth0 src 95.216.1.2 uid 0") == {4: "95.216.1.2"}


def _server_history(**given: str) -> list[DomainEvent]:
    from events.server import ServerRegistered, ServerValidated

    registered = ServerRegistered(
        server_id="s1",
        name="web-1",
        host="web-1.example.com",
        port=22,
        ssh_user="deploy",
        auth_method="key",
        ssh_private_key=Sealed("v1:k"),
        ssh_password=None,
        host_key=None,
        max_ssh_sessions=4,
        created_at=NOW,
        **given,
    )
    detected = ServerValidated(
        server_id="s1",
        operation_id="o1",
        os_name="Debian",
        os_version="12",
        cpu_cores=2,
        ram_total_bytes=1,
        disk_free_bytes=1,
        docker_version="27",
        compose_version="2.29",
        validated_at=NOW,
        public_ipv4="95.216.1.2",
        public_ipv6=None,
    )
    return [registered, detected]


def test_a_server_s_public_address_is_detected_at_validation_unless_given() -> None:
    from workers.server.credentials import fold_server, profile_of

    detected = profile_of(fold_server(_server_history()))
    given = profile_of(fold_server(_server_history(public_ipv4="198.51.100.7")))

    assert (detected.public_ipv4, detected.public_ipv6) == ("95.216.1.2", None)
    assert (given.public_ipv4, given.public_ipv6) == ("198.51.100.7", None)


def auto_added() -> list[DomainEvent]:
    command = AddDomain(
        domain_id="d1",
        instance_id="i1",
        domain="shop.odoo.example.com",
        request_id="r1",
        auto_generated=True,
    )
    return decide(command, fold(()), NOW)


def test_the_auto_subdomain_is_added_marked_and_checked_like_a_custom_domain() -> None:
    history = auto_added()

    assert history == [
        DomainAdded(**IDS, domain="shop.odoo.example.com", added_at=NOW, auto_generated=True),
        DomainVerificationRequested(**IDS, request_id="r1", first_requested_at=NOW),
    ]
    history += decide(
        RecordVerified(request_id="r1", addresses=["203.0.113.7"], certificate_request_id="c1"),
        fold(history),
        NOW,
    )
    assert history[-1] == CertificateRequested(**IDS, request_id="c1", renewal=False)


def test_the_auto_subdomain_that_does_not_point_at_the_server_fails_with_the_answer() -> None:
    history = auto_added()
    answer = "shop.odoo.example.com resolves to 192.0.2.10; expected 203.0.113.7"

    history += decide(RecordVerificationFailed(request_id="r1", message=answer), fold(history), NOW)

    assert isinstance(history[-1], DomainVerificationFailed)
    assert history[-1].message == answer
    assert not any(isinstance(e, CertificateRequested) for e in history)
    assert decide(RequestCertificate(request_id="c9"), fold(history), NOW) == []


def test_the_auto_subdomain_cannot_be_removed_but_can_be_made_primary() -> None:
    history = auto_added()

    with pytest.raises(AutoDomainKept):
        decide(RemoveDomain(), fold(history), NOW)
    assert decide(MakePrimary(), fold(history), NOW) == [PrimaryDomainChanged(**IDS)]


def test_the_auto_subdomain_goes_with_its_removed_instance() -> None:
    history = auto_added()

    removed = decide(RemoveDomain(instance_removed=True), fold(history), NOW)

    assert removed == [DomainRemoved(**IDS, domain="shop.odoo.example.com", removed_at=NOW)]


def test_a_domain_added_before_auto_subdomains_existed_is_a_custom_domain() -> None:
    old = msgspec.json.decode(
        msgspec.json.encode(
            {"domain_id": "d1", "instance_id": "i1", "domain": "shop.example.com",
             "added_at": NOW.isoformat()}
        ),
        type=DomainAdded,
    )  # fmt: skip

    assert old.auto_generated is False
    assert decide(RemoveDomain(), fold([old]), NOW)[0] == DomainRemoved(
        **IDS, domain="shop.example.com", removed_at=NOW
    )
