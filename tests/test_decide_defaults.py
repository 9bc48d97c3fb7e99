"""Defaults chosen at creation: settings by environment type, slugs and database names."""

from __future__ import annotations

import re

import pytest

from commands.defaults import db_name_for, settings_for, slug_candidates

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,48}[a-z0-9]")


def test_production_gets_more_workers_than_staging_and_staging_more_than_development() -> None:
    workers = [settings_for(kind).workers for kind in ("production", "staging", "development")]

    assert workers == sorted(workers, reverse=True)
    assert workers[-1] >= 1  # the websocket (gevent) process needs prefork mode


@pytest.mark.parametrize("kind", ["production", "staging", "development"])
def test_the_hard_memory_limit_is_above_the_soft_one(kind: str) -> None:
    settings = settings_for(kind)  # type: ignore[arg-type]

    assert settings.limit_memory_hard > settings.limit_memory_soft > 0
    assert settings.limit_time_real > settings.limit_time_cpu > 0


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Acme Production", "acme-production"),
        ("  Café  Ünïcode!! ", "cafe-unicode"),
        ("x" * 80, "x" * 50),
    ],
)
def test_a_slug_is_the_name_folded(name: str, first: str) -> None:
    assert slug_candidates(name, ["ab12"])[0] == first


@pytest.mark.parametrize("name", ["A", "日本", "--", "Acme Production", "x" * 80])
def test_every_candidate_is_a_valid_slug(name: str) -> None:
    candidates = slug_candidates(name, ["ab12", "cd34"])

    assert candidates
    assert all(SLUG.fullmatch(slug) for slug in candidates), candidates


def test_a_name_too_short_for_a_slug_gets_a_suffix() -> None:
    assert slug_candidates("A", ["ab12"]) == ["a-ab12"]


@pytest.mark.parametrize(("slug", "db"), [("acme-prod", "acme_prod"), ("9lives", "db_9lives")])
def test_the_database_name_is_the_slug_as_an_identifier(slug: str, db: str) -> None:
    assert db_name_for(slug) == db
