"""Secrets are sealed per stream, never stored in plaintext, and crypto-shredding works."""

from __future__ import annotations

import msgspec
import psycopg
import pytest
from builders import meta, server_registered

from events.secrets import MASK, MasterKeyMismatch, StreamForgotten, Vault, mask_sealed
from events.store import NO_STREAM, EventStore

PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsuper-secret-key-material\n-----END"


async def test_a_sealed_secret_opens_to_its_plaintext(vault: Vault):
    sealed = await vault.seal("server-s1", PRIVATE_KEY)

    assert PRIVATE_KEY not in sealed.sealed
    assert await vault.open("server-s1", sealed) == PRIVATE_KEY


async def test_a_secret_sealed_for_one_stream_does_not_open_in_another(vault: Vault):
    sealed = await vault.seal("server-s1", PRIVATE_KEY)
    await vault.seal("server-s2", "other")

    assert await vault.open("server-s2", sealed) == MASK


async def test_no_plaintext_reaches_the_database(
    vault: Vault, store: EventStore, database_url: str
):
    sealed = await vault.seal("server-s1", PRIVATE_KEY)
    await store.append(
        "server-s1", NO_STREAM, [server_registered(server_id="s1", ssh_private_key=sealed)], meta()
    )

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM events WHERE data::text LIKE %s", ("%super-secret%",)
        )
        row = await cur.fetchone()
        keys = await (await conn.execute("SELECT wrapped_key FROM stream_keys")).fetchall()
    assert row == (0,)
    assert all(b"super-secret" not in bytes(k[0]) for k in keys)


async def test_forgetting_a_stream_masks_its_secrets_and_reading_still_works(
    vault: Vault, store: EventStore, pool
):
    sealed = await vault.seal("server-s1", PRIVATE_KEY)
    await store.append(
        "server-s1", NO_STREAM, [server_registered(server_id="s1", ssh_private_key=sealed)], meta()
    )

    assert await vault.forget("server-s1") is True

    other_process = Vault(pool, "test-master-key-not-for-production")
    assert await other_process.open("server-s1", sealed) == MASK
    (event,) = await store.read_stream("server-s1")
    shown = mask_sealed(msgspec.json.decode(event.data))
    assert shown["ssh_private_key"] == MASK
    with pytest.raises(StreamForgotten):
        await vault.seal("server-s1", "new secret")


async def test_a_wrong_master_key_cannot_open_secrets(vault: Vault, pool):
    sealed = await vault.seal("server-s1", PRIVATE_KEY)

    with pytest.raises(MasterKeyMismatch):
        await Vault(pool, "another-master-key").open("server-s1", sealed)


async def test_the_key_cache_drops_stale_keys_once_it_is_full(pool, monkeypatch):
    import events.secrets as secrets_module

    monkeypatch.setattr(secrets_module, "_KEY_CACHE_SIZE", 3)
    monkeypatch.setattr(secrets_module, "_KEY_CACHE_SECONDS", 0.0)
    vault = Vault(pool, "master")
    for n in range(10):
        await vault.seal(f"instance-{n}", "value")

    assert len(vault._keys) <= 3
