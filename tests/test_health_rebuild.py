"""The health read model and its scores come from the log alone: a rebuild gives the same."""

from __future__ import annotations

from typing import Any

from health_fixtures import HealthWorld, health_world_fixture  # noqa: F401
from projection_fixtures import differences_from_a_fresh_build
from saga_fixtures import ORG, bare_fleet_fixture  # noqa: F401

from events.catalog import build_registry
from projections.catalog import build_projections
from projections.health import get_health_score
from projections.runtime.rebuild import rebuild


async def _rows(world: HealthWorld) -> list[Any]:
    async with world.pool.connection() as conn:
        cur = await conn.execute("SELECT to_jsonb(h) FROM health h ORDER BY instance_id")
        return [row[0] for row in await cur.fetchall()]


async def test_the_health_projection_rebuilt_from_the_log_gives_the_same_health_and_scores(
    health_world: HealthWorld,
) -> None:
    sshd = health_world.fleet.sshd
    for _ in range(3):
        await health_world.cycle()
    sshd.arm("health-probe")
    await health_world.cycle()
    sshd.disarm("health-probe")
    sshd.override_container(health_world.app_container, RestartCount=1, MemoryBytes=2**30)
    for _ in range(3):
        await health_world.cycle()
    await health_world.projected()
    at = health_world.clock.now
    scored = await get_health_score(health_world.pool, ORG, health_world.instance.id, now=at)
    before = await _rows(health_world)

    differences = await differences_from_a_fresh_build(health_world.pool, "health")
    await rebuild(health_world.pool, build_projections(build_registry())["health"])

    after = await _rows(health_world)
    rescored = await get_health_score(health_world.pool, ORG, health_world.instance.id, now=at)
    assert differences == {"health": 0}
    assert after == before
    assert len(before[0]["samples"]) >= 1
    assert scored.score is not None
    assert scored.score < 100
    assert rescored == scored
