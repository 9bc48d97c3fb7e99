"""The instances read model: status rules, fields, org isolation, secrets, keyset pages."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from builders import meta
from projection_fixtures import (
    NOW,
    append_to_instance,
    catch_up,
    create_instance,
    health_observed,
    instance_created,
    new_id,
    observe,
    provision,
    request_action,
)

from events.health import HealthObserved, health_stream
from events.instance import (
    ActionFailed,
    InstanceRemoved,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    RedeployRequested,
    RemovalRequested,
    instance_stream,
)
from events.pool import Pool
from events.secrets import Vault
from events.store import ANY, NO_STREAM, EventStore, NewEvents
from projections.health import get_health
from projections.instances import get_instance, list_instances
from projections.runtime.errors import InvalidCursor
from projections.servers import count_live_instances_on_server


async def test_a_created_instance_is_creating_with_its_fields_and_auto_domain(
    pool: Pool, store: EventStore
):
    instance_id, result = await create_instance(store, server_id="srv-9", name="Shop")
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert (view.status, view.name, view.server_id, view.org_id) == (
        "creating",
        "Shop",
        "srv-9",
        "org-a",
    )
    assert view.version == result.version == 2
    assert view.created_at == NOW
    assert (view.workers, view.log_level, view.http_port_host) == (2, "info", 20000)
    (domain,) = view.domains
    assert domain.domain == view.auto_subdomain
    assert (domain.is_primary, domain.is_auto_generated, domain.dns_status) == (
        True,
        True,
        "pending",
    )
    assert view.health_score is None
    assert view.last_seen_at is None


@pytest.mark.parametrize(
    ("action", "status"), [("start", "starting"), ("stop", "stopping"), ("restart", "restarting")]
)
async def test_a_requested_action_shows_its_transitional_status(
    pool: Pool, store: EventStore, action: str, status: str
):
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    await request_action(store, instance_id, action)
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert view.status == status


async def test_provisioning_runs_the_instance_and_leaves_its_auto_subdomain_unchecked(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert (view.status, view.active_color) == ("running", "blue")
    # Nothing checked its DNS and no certificate was issued for it (issue 16, 92cb1c0).
    assert (view.domains[0].dns_status, view.domains[0].ssl_status) == ("pending", "pending")


async def test_completed_actions_set_running_or_stopped_and_a_control_restart_counts_nothing(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    op = new_id()
    restarted_at = NOW + timedelta(hours=1)
    await append_to_instance(
        store,
        instance_id,
        InstanceStopped(instance_id=instance_id, operation_id=op),
        InstanceStarted(instance_id=instance_id, operation_id=op),
        InstanceRestarted(instance_id=instance_id, operation_id=op, restarted_at=restarted_at),
    )
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    # The restart count is Docker's (from the health read model): nothing observed yet.
    assert (view.status, view.restart_count, view.last_restart_at) == ("running", None, None)


async def test_a_stopped_instance_is_stopped(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    await append_to_instance(
        store, instance_id, InstanceStopped(instance_id=instance_id, operation_id=new_id())
    )
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert view.status == "stopped"


async def test_provisioning_failure_names_the_step_and_the_error(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    failed = ProvisioningFailed(
        instance_id=instance_id, operation_id=new_id(), step="database", message="disk full"
    )
    await append_to_instance(store, instance_id, failed)
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert view.status == "failed"
    assert view.status_message is not None
    assert "database" in view.status_message
    assert "disk full" in view.status_message


async def test_a_failed_action_fails_the_instance_with_its_message(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    await request_action(store, instance_id, "restart")
    failed = ActionFailed(
        instance_id=instance_id,
        operation_id=new_id(),
        action="restart",
        step="readiness",
        message="timeout",
    )
    await append_to_instance(store, instance_id, failed)
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert view.status == "failed"
    assert view.status_message == "restart failed at step readiness: timeout"


async def test_a_failed_redeploy_leaves_the_instance_running_on_its_colour(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    op = new_id()
    requested = RedeployRequested(instance_id=instance_id, operation_id=op, target_color="green")
    failed = ActionFailed(
        instance_id=instance_id,
        operation_id=op,
        action="redeploy",
        step="readiness-green",
        message="timeout",
    )
    await append_to_instance(store, instance_id, requested, failed)
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert (view.status, view.active_color) == ("running", "blue")
    assert view.status_message == (
        "redeploy failed at step readiness-green: timeout; blue still serves"
    )


async def test_removal_shows_removing_then_the_instance_is_gone(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store, server_id="srv-1")
    op = new_id()
    await append_to_instance(
        store, instance_id, RemovalRequested(instance_id=instance_id, operation_id=op)
    )
    await catch_up(pool, "instances")
    removing = await get_instance(pool, "org-a", instance_id)
    assert removing is not None
    assert removing.status == "removing"
    assert await count_live_instances_on_server(pool, "org-a", "srv-1") == 1

    await append_to_instance(
        store, instance_id, InstanceRemoved(instance_id=instance_id, operation_id=op)
    )
    await catch_up(pool, "instances")

    assert await get_instance(pool, "org-a", instance_id) is None
    assert await count_live_instances_on_server(pool, "org-a", "srv-1") == 0


async def test_an_update_changes_only_the_fields_it_carries(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store, name="Old")
    later = NOW + timedelta(days=1)
    await append_to_instance(
        store,
        instance_id,
        InstanceUpdated(instance_id=instance_id, name="New", addons_path=None, updated_at=later),
    )
    await catch_up(pool, "instances")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert (view.name, view.addons_path, view.updated_at, view.version) == ("New", None, later, 3)
    assert view.mcp_write_enabled is False


async def test_an_instance_of_another_organization_does_not_exist(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store, meta("org-b"))
    await catch_up(pool, "instances")

    assert await get_instance(pool, "org-a", instance_id) is None
    assert await list_instances(
        pool, "org-a", server_id=None, status=None, limit=10, cursor=None
    ) == ([], None)
    assert await get_instance(pool, "org-b", instance_id) is not None


async def test_env_vars_are_stored_sealed_and_never_in_plaintext(
    pool: Pool, store: EventStore, vault: Vault
):
    instance_id = new_id()
    sealed = await vault.seal_all(instance_stream(instance_id), {"API_TOKEN": "hunter2-plain"})
    await create_instance(store, instance_id=instance_id, env_vars=sealed)
    await append_to_instance(
        store,
        instance_id,
        InstanceUpdated(instance_id=instance_id, env_vars=sealed, updated_at=NOW),
    )
    await catch_up(pool)

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert view.env_vars == sealed
    async with pool.connection() as conn:
        for table in ("instances", "audit_log", "audit_subjects"):
            cur = await conn.execute(
                f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s", ("%hunter2%",)
            )
            assert (await cur.fetchone()) == (0,)


async def test_the_health_read_model_fills_last_seen(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    await observe(store, instance_id)
    await catch_up(pool, "instances", "health")

    view = await get_instance(pool, "org-a", instance_id)

    assert view is not None
    assert view.last_seen_at == NOW


def _seen(instance_id: str, minutes: int, count: int | None, restarts: int = 0) -> HealthObserved:
    at = NOW + timedelta(minutes=minutes)
    observed = health_observed(instance_id, at=at)
    window = msgspec.structs.replace(observed.window, restarts=restarts)
    return msgspec.structs.replace(observed, restart_count=count, window=window)


async def _restarts(pool: Pool, instance_id: str) -> tuple[Any, ...]:
    """(Instance restart count and time, by id and in a list, the health's restart count)."""
    one = await get_instance(pool, "org-a", instance_id)
    listed, _ = await list_instances(
        pool, "org-a", server_id=None, status=None, limit=10, cursor=None
    )
    health = await get_health(pool, "org-a", instance_id)
    assert one is not None
    assert health is not None
    (in_list,) = [view for view in listed if view.id == instance_id]
    return (
        one.restart_count,
        one.last_restart_at,
        (in_list.restart_count, in_list.last_restart_at)
        == (one.restart_count, one.last_restart_at),
        health.restart_count,
    )


async def test_the_instance_shows_docker_s_restarts_of_its_serving_container(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store)
    health = health_stream(instance_id)
    minute = timedelta(minutes=1)
    crashed = [
        _seen(instance_id, 0, 0),
        _seen(instance_id, 1, 2, restarts=2),
        _seen(instance_id, 2, 2),
    ]
    await store.append(health, ANY, crashed, meta())
    await catch_up(pool, "instances", "health")
    after_crashes = await _restarts(pool, instance_id)
    # A new colour serves (its count starts at 0), Docker restarts it once, then the
    # observer finds no container (no count).
    switched = [
        _seen(instance_id, 3, 0),
        _seen(instance_id, 4, 1, restarts=1),
        _seen(instance_id, 5, None),
    ]
    await store.append(health, ANY, switched, meta())
    await catch_up(pool, "instances", "health")
    after_switch = await _restarts(pool, instance_id)
    # A count above the last one observed is a restart even when no window counted it.
    await store.append(health, ANY, [_seen(instance_id, 6, 2)], meta())
    await catch_up(pool, "instances", "health")

    assert after_crashes == (2, NOW + minute, True, 2)
    assert after_switch == (None, NOW + 4 * minute, True, None)
    assert await _restarts(pool, instance_id) == (2, NOW + 6 * minute, True, 2)


async def test_list_filters_by_server_and_status(pool: Pool, store: EventStore):
    on_one, _ = await create_instance(store, server_id="srv-1")
    on_two, _ = await create_instance(store, server_id="srv-2", port=20010)
    await provision(store, on_two)
    await catch_up(pool, "instances")

    by_server, _ = await list_instances(
        pool, "org-a", server_id="srv-1", status=None, limit=10, cursor=None
    )
    running, _ = await list_instances(
        pool, "org-a", server_id=None, status="running", limit=10, cursor=None
    )
    none, _ = await list_instances(
        pool, "org-a", server_id="srv-1", status="running", limit=10, cursor=None
    )

    assert [v.id for v in by_server] == [on_one]
    assert [v.id for v in running] == [on_two]
    assert none == []


async def _bulk_instances(store: EventStore, count: int) -> list[str]:
    """`count` instances, many sharing a creation time (the id breaks the tie)."""
    ids = [new_id() for _ in range(count)]
    batches = [
        [
            NewEvents(
                instance_stream(i),
                NO_STREAM,
                [instance_created(i, created_at=NOW + timedelta(seconds=n % 97))],
                meta(),
            )
            for n, i in enumerate(ids[start : start + 500], start)
        ]
        for start in range(0, count, 500)
    ]
    for first in range(0, len(batches), 4):
        await asyncio.gather(*(store.append_batch(b) for b in batches[first : first + 4]))
    return ids


async def test_cursor_pages_cover_ten_thousand_instances_exactly_once_newest_first(
    pool: Pool, store: EventStore
):
    ids = await _bulk_instances(store, 10_000)
    await catch_up(pool, "instances", batch_size=2000)

    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = await list_instances(
            pool, "org-a", server_id=None, status=None, limit=100, cursor=cursor
        )
        seen.extend(page)
        pages += 1
        if cursor is None:
            break

    assert pages == 100
    assert sorted(v.id for v in seen) == sorted(ids)
    keys = [(v.created_at, v.id) for v in seen]
    assert keys == sorted(keys, reverse=True)


async def _buffers(pool: Pool, cursor: str | None) -> int:
    """Shared buffers the list query touches (its cost, independent of timing noise)."""
    from projections.instances import _list_query
    from projections.runtime.cursor import decode_cursor

    after = None if cursor is None else decode_cursor(cursor)
    query = b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + _list_query(
        by_server=False, by_status=False, after=after is not None
    )
    params = {
        "org": "org-a",
        "at": after.created_at if after else None,
        "id": after.id if after else None,
        "limit": 51,
    }
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return int(plan["Shared Hit Blocks"] + plan.get("Shared Read Blocks", 0))


async def test_page_fifty_costs_what_page_one_costs(pool: Pool, store: EventStore):
    await _bulk_instances(store, 10_000)
    await catch_up(pool, "instances", batch_size=2000)
    async with pool.connection() as conn:
        await conn.execute("ANALYZE instances")
    cursor = None
    for _ in range(49):
        _, cursor = await list_instances(
            pool, "org-a", server_id=None, status=None, limit=50, cursor=cursor
        )

    first, fiftieth = await _buffers(pool, None), await _buffers(pool, cursor)

    assert fiftieth <= first * 1.5 + 10


@pytest.mark.parametrize("cursor", ["not-a-cursor", "e30", "WzEsMl0", "!!!", "W10"])
async def test_a_malformed_cursor_is_refused(pool: Pool, cursor: str):
    with pytest.raises(InvalidCursor):
        await list_instances(pool, "org-a", server_id=None, status=None, limit=5, cursor=cursor)
