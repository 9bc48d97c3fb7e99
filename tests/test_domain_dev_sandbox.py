"""`odoofleet dev --sandbox-server` orders certificates from the self-signed stand-in CA unless
ODOOFLEET_ACME_DIRECTORY_URL names a CA (docs/domains.md, "Sandbox")."""

from __future__ import annotations

from pathlib import Path

from odoofleet.cli_dev import with_sandbox_acme
from odoofleet.dev import DevOptions
from odoofleet.settings import Settings

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


def _options(*, sandbox_server: bool) -> DevOptions:
    return DevOptions(
        host="127.0.0.1", port=8000, data_dir=Path("/tmp/x"), fresh=False,
        sandbox_server=sandbox_server,
    )  # fmt: skip


def _settings(**changes: str) -> Settings:
    return Settings(database_url="postgresql://x/y", **changes)  # type: ignore[arg-type]


def test_the_sandbox_server_uses_the_self_signed_stand_in_by_default() -> None:
    effective = with_sandbox_acme(_settings(), _options(sandbox_server=True), set())

    assert effective.acme_directory_url == "self-signed"


def test_a_directory_given_in_the_environment_wins_over_the_sandbox_default() -> None:
    given = _settings(acme_directory_url="https://pebble:14000/dir")

    effective = with_sandbox_acme(
        given, _options(sandbox_server=True), {"ODOOFLEET_ACME_DIRECTORY_URL"}
    )

    assert effective.acme_directory_url == "https://pebble:14000/dir"


def test_without_the_sandbox_server_the_configured_ca_stays() -> None:
    effective = with_sandbox_acme(_settings(), _options(sandbox_server=False), set())

    assert effective.acme_directory_url == LETS_ENCRYPT
