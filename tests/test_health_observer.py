"""The health observer against a real sshd and the stand-in docker: statuses, the score and
its factors, outages of the server, and how little it writes."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from health_fixtures import HealthWorld, health_world_fixture  # noqa: F401
from projection_fixtures import projections_running
from saga_fixtures import ORG, Fleet, bare_fleet_fixture  # noqa: F401
from waiting import eventually

from events.instance import InstanceProvisioned
from events.pool import Pool
from events.server import ServerReachable, ServerUnreachable, ServerValidated, server_stream
from projections.health import HealthScoreView
from projections.health_score import WEIGHTS
from projections.servers import get_server
from workers.server.commands import app_up_command, stop_command
from workers.server.layout import InstanceLayout
from workers.server.shell import script


def _factors(score: HealthScoreView) -> dict[str, float | None]:
    return {f.name: f.score for f in score.factors}


async def test_a_healthy_instance_is_recorded_healthy_and_scores_an_a(
    health_world: HealthWorld,
) -> None:
    appended = await health_world.cycle()

    health = await health_world.projected()
    score = await health_world.score()
    assert appended == 1
    assert (health.status, health.container_state, health.http_status) == (
        "healthy",
        "running",
        200,
    )
    assert health.last_seen_at == health.last_checked_at == health_world.clock.now
    assert (score.score, score.grade) == (100, "A")
    assert [f.name for f in score.factors] == list(WEIGHTS)
    assert sum(f.weight for f in score.factors) == 1.0
    assert all(f.score == 100 and f.detail for f in score.factors)


async def test_a_failing_web_health_turns_the_instance_unhealthy_at_the_next_cycle(
    health_world: HealthWorld,
) -> None:
    for _ in range(3):
        await health_world.cycle()
    before = await health_world.score()

    health_world.fleet.sshd.arm("health-probe")
    appended = await health_world.cycle()

    health = await health_world.projected()
    after = await health_world.score()
    assert appended == 1
    assert (health.status, health.http_status) == ("unhealthy", 500)
    assert health.message == "/web/health answered HTTP 500"
    assert (before.score, after.score, after.grade) == (100, 60, "D")
    lowered = {name for name, score in _factors(after).items() if score != 100}
    assert lowered == {"availability"}
    availability = after.factors[0]
    assert (availability.score, availability.value) == (0.0, 75.0)
    assert availability.detail == "3 of 4 probes passed in the last 24 h"


async def test_restarts_lower_stability_and_degrade_the_instance_for_a_cycle(
    health_world: HealthWorld,
) -> None:
    await health_world.cycle()
    health_world.fleet.sshd.override_container(health_world.app_container, RestartCount=2)

    await health_world.cycle()
    degraded = await health_world.projected()
    await health_world.cycle()
    healthy = await health_world.projected()

    score = await health_world.score()
    assert degraded.status == "degraded"
    assert degraded.message.startswith("restarted 2x since")
    assert healthy.status == "healthy"
    stability = next(f for f in score.factors if f.name == "stability")
    assert (stability.score, stability.value) == (60.0, {"restarts": 2, "oomKills": 0})
    assert stability.detail == "2 restarts and 0 OOM kills in the last 24 h"
    assert (score.score, score.grade) == (92, "A")


async def test_a_stopped_server_leaves_its_instances_unknown_and_its_outage_recorded_once(
    health_world: HealthWorld,
) -> None:
    await health_world.cycle()
    sshd = health_world.fleet.sshd

    sshd.stop()
    during = [await health_world.cycle() for _ in range(3)]
    unknown = await health_world.projected()
    sshd.start()
    await health_world.cycle()
    await health_world.cycle()

    server = await health_world.fleet.events(server_stream(health_world.server_id))
    outages = [e for e in server if isinstance(e, ServerUnreachable | ServerReachable)]
    assert [type(e) for e in outages] == [ServerUnreachable, ServerReachable]
    assert outages[0].message.startswith("server unreachable: cannot reach 127.0.0.1")
    assert during == [1, 0, 0]  # the change to unknown; no heartbeat while nobody can look
    assert (unknown.status, unknown.container_state) == ("unknown", None)
    assert unknown.message == outages[0].message


async def test_unchanged_cycles_append_no_more_events_than_the_heartbeat_allows(
    health_world: HealthWorld,
) -> None:
    appended = [await health_world.cycle(after=30.0) for _ in range(100)]

    events = await health_world.observations()
    assert sum(appended) == len(events) == 10  # 100 cycles x 30 s, one event per 300 s
    gaps = [(b.observed_at - a.observed_at).total_seconds() for a, b in pairwise(events)]
    assert gaps == [300.0] * 9
    assert [e.window.probes for e in events] == [1] + [10] * 9
    assert {e.status for e in events} == {"healthy"}


async def test_a_restarted_observer_carries_on_from_the_log_without_a_change(
    health_world: HealthWorld,
) -> None:
    await health_world.cycle()
    await health_world.projected()

    successor = health_world.new_observer("observer-2")
    first = await health_world.cycle(successor)
    later = [await health_world.cycle(successor) for _ in range(10)]

    events = await health_world.observations()
    assert first == 0
    assert sum(later) == 1  # the heartbeat, 300 s after the last recorded event
    assert events[1].observed_at == events[0].observed_at + timedelta(seconds=300)


async def test_a_stopped_instance_is_unknown_and_keeps_its_score(
    health_world: HealthWorld,
) -> None:
    await health_world.cycle()
    running = await health_world.score()
    await health_world.fleet.control(health_world.instance, "stop")
    await health_world.wait_instance_status("stopped")

    for _ in range(12):
        await health_world.cycle()

    health = await health_world.projected()
    score = await health_world.score()
    events = await health_world.observations()
    assert health.status == "unknown"
    assert health.message.startswith("stopped")
    assert [e.status for e in events] == ["healthy", "unknown", "unknown"]  # change, heartbeat
    assert all(e.window.probes == 0 for e in events[1:])
    assert (score.score, score.grade) == (running.score, running.grade) == (100, "A")


async def test_the_colour_running_at_probe_time_is_observed_during_a_switch(
    health_world: HealthWorld,
) -> None:
    """A redeploy stops the old colour before InstanceRedeployed is recorded (and projected):
    the read model still names blue while green serves. The observer takes the colour that
    runs, so it records no false "unhealthy: … exited" (which cost a real instance its grade)."""
    await health_world.cycle()
    fleet = health_world.fleet
    layout = InstanceLayout(health_world.instance.slug, fleet.root)
    switch = script(app_up_command(layout, "green"), stop_command(layout, "blue"))
    switched = await health_world.runner.run(fleet.sshd.connection_info(), switch)
    assert switched.ok, switched.stderr
    assert fleet.sshd.container(health_world.app_container)["State"]["Status"] == "exited"

    await health_world.cycle(after=300.0)  # a heartbeat is due: the cycle records

    observed = (await health_world.observations())[-1]
    assert (observed.status, observed.container_state) == ("healthy", "running")
    assert all(o.status == "healthy" for o in await health_world.observations())


async def test_an_instance_being_removed_is_not_judged(
    bare_fleet: Fleet, pool: Pool, database_url: str
) -> None:
    """Its teardown takes its containers down; the read model may still say running (the
    projections lag), but its own stream says a removal was asked for: nothing is recorded."""
    bare_fleet.start_workers(sagas={"ServerValidationRequested", "ProvisioningRequested"})
    server_id = await bare_fleet.register_server()
    await bare_fleet.wait_for(server_stream(server_id), ServerValidated)
    instance = await bare_fleet.create_instance(server_id)
    await bare_fleet.wait_for(instance.stream, InstanceProvisioned)
    world = HealthWorld(bare_fleet, server_id, instance)
    try:
        async with projections_running(pool, database_url):
            await world.wait_instance_status("running")

            async def server_active() -> bool:
                view = await get_server(pool, ORG, server_id)
                return view is not None and view.status == "active"

            await eventually(server_active, timeout=30, message="server active")
            assert await world.cycle() == 1
        await bare_fleet.remove(instance)  # no teardown saga runs here, no projection
        bare_fleet.sshd.override_container(world.app_container, Status="exited")

        appended = await world.cycle(after=400.0)
    finally:
        await world.close()

    assert appended == 0
    assert [o.status for o in await world.observations()] == ["healthy"]
