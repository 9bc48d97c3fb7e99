"""The operator CLI: projections status|rebuild, events replay|republish|tail, audit."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json

import msgspec
import nats
import pytest
from builders import meta
from projection_fixtures import (
    NOW,
    catch_up,
    create_instance,
    new_id,
    register_server,
    server_registered,
)
from waiting import eventually

from events.api_key import ApiKeyCreated, api_key_stream
from events.pool import Pool
from events.server import server_stream
from events.store import NO_STREAM, Checkpoint, EventStore
from odoofleet import cli_audit, cli_events, cli_projections
from odoofleet.settings import Settings
from projections.catalog import NAMES
from projections.instances import get_instance
from projections.servers import get_server


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odoofleet")
    commands = parser.add_subparsers(dest="command", required=True)
    cli_projections.register(commands)
    cli_audit.register(commands)
    events = commands.add_parser("events")
    cli_projections.register_events_actions(
        events.add_subparsers(dest="events_command", required=True)
    )
    return parser


async def _run(
    settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str]:
    args = _parser().parse_args(argv)
    code = await asyncio.to_thread(args.run, settings, args)
    return code, capsys.readouterr().out


async def test_status_lists_every_projection_with_checkpoint_and_lag(
    pool: Pool, store: EventStore, settings: Settings, capsys: pytest.CaptureFixture[str]
):
    await create_instance(store)
    await catch_up(pool, "instances")

    code, out = await _run(settings, capsys, "projections", "status", "--format", "json")
    table_code, table = await _run(settings, capsys, "projections", "status")

    reports = {r["name"]: r for r in json.loads(out)}
    assert code == table_code == 0
    assert set(reports) == set(NAMES)
    assert reports["instances"]["lag_events"] == 0
    assert reports["audit"]["lag_events"] == 2
    assert reports["instances"]["state"] == "stopped"
    assert "instances" in table
    assert "stopped" in table


async def test_rebuild_and_replay_from_the_cli_keep_the_read_model(
    pool: Pool, store: EventStore, settings: Settings, capsys: pytest.CaptureFixture[str]
):
    instance_id, created = await create_instance(store)
    await catch_up(pool)

    rebuilt, _ = await _run(settings, capsys, "projections", "rebuild", "--all")
    replayed, out = await _run(
        settings, capsys, "events", "replay", "--projection", "instances", "--from", "1"
    )

    assert (rebuilt, replayed) == (0, 0)
    assert f"replayed {created.version} events into instances" in out
    assert await get_instance(pool, "org-a", instance_id) is not None


async def test_rebuilding_servers_from_the_cli_fills_public_host_ports(
    pool: Pool, store: EventStore, settings: Settings, capsys: pytest.CaptureFixture[str]
):
    server_id = new_id()
    public = msgspec.structs.replace(server_registered(server_id), public_host_ports=True)
    await store.append(server_stream(server_id), NO_STREAM, [public], meta())
    await catch_up(pool, "servers")
    async with pool.connection() as conn:
        # As a row written before the column existed would read.
        await conn.execute("UPDATE servers SET public_host_ports = false")

    code, _ = await _run(settings, capsys, "projections", "rebuild", "servers")

    view = await get_server(pool, "org-a", server_id)
    assert code == 0
    assert view is not None
    assert view.public_host_ports is True


async def test_audit_prints_the_filtered_trail_as_json_csv_or_a_table(
    pool: Pool, store: EventStore, settings: Settings, capsys: pytest.CaptureFixture[str]
):
    instance_id, _ = await create_instance(store, meta("org-a", user="alice"))
    await create_instance(store, meta("org-b", user="bob"), port=20010)
    await register_server(store)
    key_id = new_id()
    issued = ApiKeyCreated(
        key_id=key_id, name="ci", secret_hash="h", permissions=["view:audit"], instance_ids=None,
        expires_at=None, created_by="carol", created_at=NOW,
    )  # fmt: skip
    await store.append(api_key_stream(key_id), NO_STREAM, [issued], meta("org-a", user="carol"))
    await catch_up(pool, "audit")

    _, as_json = await _run(
        settings, capsys, "audit", "--action", "instance.created", "--org", "org-a", "--format=json"
    )
    _, every_org = await _run(
        settings, capsys, "audit", "--resource-type", "instance", "--format", "json"
    )
    _, as_csv = await _run(settings, capsys, "audit", "--user", "alice", "--format", "csv")
    _, none = await _run(settings, capsys, "audit", "--until", "2000-01-01", "--format", "json")
    _, table = await _run(settings, capsys, "audit", "--since", "2000-01-01")
    _, keys = await _run(settings, capsys, "audit", "--resource-type", "api_key", "--format=json")

    (entry,) = json.loads(as_json)
    assert (entry["resource_id"], entry["user_id"]) == (instance_id, "alice")
    assert {e["org_id"] for e in json.loads(every_org)} == {"org-a", "org-b"}
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert [(r["action"], r["user_id"]) for r in rows] == [("instance.created", "alice")]
    assert json.loads(rows[0]["after_state"])["status"] == "creating"
    assert json.loads(none) == []
    assert "server.created" in table
    assert [(e["action"], e["resource_id"]) for e in json.loads(keys)] == [
        ("api_key.created", key_id)
    ]


async def test_republish_sends_a_range_of_the_log_to_jetstream_again(
    store: EventStore, settings: Settings, capsys: pytest.CaptureFixture[str]
):
    _, first = await create_instance(store)
    await create_instance(store, port=20010)

    argv = ("events", "republish", "--from", "1", "--to", str(first.position))
    code, out = await _run(settings, capsys, *argv)
    _, again = await _run(settings, capsys, *argv)

    assert code == 0
    assert "republished 2 events (0 dropped" in out
    assert "republished 2 events (2 dropped" in again
    nc = await nats.connect(settings.nats_url)
    try:
        info = await nc.jetstream().stream_info(settings.nats_stream)
    finally:
        await nc.close()
    assert info.state.messages == 2


async def test_tail_prints_the_newest_events_and_follows_from_the_last(
    store: EventStore, capsys: pytest.CaptureFixture[str]
):
    for name in ("box-1", "box-2", "box-3"):
        await register_server(store, name=name)
    head = await store.head(readable=False)
    await eventually(lambda: _readable(store, head))

    following = await cli_events._print_last(store, 2)

    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2
    assert '"name":"box-2"' in printed[0]
    assert '"name":"box-3"' in printed[1]
    assert following == head
    assert await cli_events._print_last(store, 0) == head
    assert capsys.readouterr().out == ""


async def _readable(store: EventStore, head: Checkpoint) -> bool:
    return await store.head() == head
