"""The provisioning steps (DESIGN.md, "Sagas and the servers"; ODOO-HOSTING.md §2.6), each
idempotent, and the plan that runs them for a provisioning or for the start that resumes it."""

from __future__ import annotations

from typing import Final, assert_never

from commands.instance_outcomes import RecordProvisioned, RecordProvisioningFailed
from commands.server_state import Absent, Active, Deleted, InError, Pending, Unreachable
from events.instance import FIRST_COLOR
from workers.sagas.context import InstanceContext
from workers.sagas.instance_saga import Plan
from workers.sagas.operation_log import OperationTakenOver
from workers.sagas.proxy_steps import ensure_ports, ensure_proxy, switch_route
from workers.sagas.readiness import wait_db_healthy, wait_ready
from workers.sagas.runtime import Step
from workers.server.commands import (
    admin_password_script,
    app_down_command,
    app_up_command,
    create_database_command,
    db_up_command,
    layout_command,
    networks_and_volumes_command,
    set_admin_password_command,
)
from workers.server.credentials import load_server
from workers.server.facts import parse_server_facts, preflight_problems, server_facts_command
from workers.server.remote import NotYet, StepError, poll
from workers.server.render import instance_files
from workers.server.shell import script
from workers.server.spec import InstanceSpec

MIB: Final = 2**20
# Steps that look at the present rather than change anything: a resumed provisioning looks
# again, where the changes an earlier operation completed are not made twice.
CHECKS: Final = frozenset({"server", "preflight", "db-healthy", "readiness"})


def provision_plan(operation_id: str, resume_from: tuple[str, ...]) -> Plan:
    """Provisioning under `operation_id`; what the operations in `resume_from` completed is
    not done again (a start or restart resuming a failed provisioning), except the app colour:
    one an earlier attempt started did not become ready, or runs the settings of before the
    instance was changed, and starting the instance is how an operator applies a fix. So a
    resumed provisioning recreates it (issue 14: a start after a readiness failure resumed past
    app-up and found the same sick container)."""
    resuming = bool(resume_from)

    async def steps(ctx: InstanceContext) -> list[Step]:
        return provision_steps(ctx, fresh_app=resuming)

    return Plan(
        steps=steps,
        succeeded=lambda: RecordProvisioned(operation_id=operation_id, active_color=FIRST_COLOR),
        failed=lambda step, message: RecordProvisioningFailed(
            operation_id=operation_id, step=step, message=message
        ),
        resume_from=resume_from,
        checks=CHECKS | {"app-up"} if resuming else CHECKS,
    )


def provision_steps(ctx: InstanceContext, *, fresh_app: bool = False) -> list[Step]:
    return [
        Step("server", lambda: wait_for_server(ctx)),
        Step("preflight", lambda: preflight(ctx)),
        Step("layout", lambda: lay_out(ctx)),
        Step("db-up", lambda: db_up(ctx)),
        Step("db-healthy", lambda: wait_db_healthy(ctx.remote, ctx.layout, ctx.config.readiness)),
        Step("create-db", lambda: create_database(ctx)),
        Step("admin-password", lambda: set_admin_password(ctx, None)),
        Step("app-up", lambda: app_up(ctx, FIRST_COLOR, fresh=fresh_app)),
        Step("readiness", lambda: ready(ctx, FIRST_COLOR)),
        Step("route", lambda: route(ctx, FIRST_COLOR)),
    ]


async def wait_for_server(ctx: InstanceContext) -> str:
    """A server still pending validation is waited for (API.md: creating on it is allowed)."""
    name = ctx.server.name

    async def look() -> str | NotYet:
        if await ctx.cancelled():
            raise OperationTakenOver("cancelled while waiting for the server")
        server = await load_server(ctx.deps.store, ctx.server_id)
        match server:
            case Pending():
                return NotYet("pending validation")
            case InError(message=message):
                raise StepError(f"server {name} is in error: {message}")
            case Deleted() | Absent():
                raise StepError(f"server {name} was deleted")
            case Active() | Unreachable():
                ctx.use_server(server.profile)
                return f"server {name} is {server.status}"
            case _:
                assert_never(server)

    wait = ctx.config.server_wait
    what = f"the validation of server {name}"
    return await poll(look, within=wait.timeout, interval=wait.interval, waiting_for=what)


async def preflight(ctx: InstanceContext) -> str:
    spec = ctx.spec()
    facts = parse_server_facts(await ctx.remote.check(server_facts_command(ctx.config.root)))
    problems = preflight_problems(
        facts,
        min_disk_free_bytes=ctx.config.min_disk_free_bytes,
        min_ram_available_bytes=ram_needed(spec),
    )
    if problems:
        raise StepError("; ".join(problems))
    return (
        f"docker {facts.docker_version}, compose {facts.compose_version}; "
        f"{facts.disk_free_bytes // MIB} MiB free on disk, "
        f"{facts.ram_available_bytes // MIB} MiB of RAM available, "
        f"{ram_needed(spec) // MIB} MiB needed"
    )


def ram_needed(spec: InstanceSpec) -> int:
    """Odoo's rule of thumb per worker, 0.8 x 150 MB + 0.2 x 1 GB (ODOO-HOSTING.md §2.1), for
    two colours at once (a blue/green switch) plus the database."""
    per_process = int(0.8 * 150 * MIB + 0.2 * 1024 * MIB)
    return 2 * max(1, spec.workers) * per_process + 512 * MIB


async def lay_out(ctx: InstanceContext) -> str:
    spec, layout = ctx.spec(), ctx.layout
    await ctx.remote.check(
        script(layout_command(layout), networks_and_volumes_command(layout, spec.instance_id))
    )
    return await upload_files(ctx)


async def upload_files(ctx: InstanceContext) -> str:
    """Every file of the instance directory, rendered from the settings the operation read."""
    layout, files = ctx.layout, instance_files(ctx.spec())
    for rendered in files:
        await ctx.remote.upload(f"{layout.dir}/{rendered.path}", rendered.content, rendered.mode)
    return f"{layout.dir}: " + ", ".join(rendered.path for rendered in files)


async def db_up(ctx: InstanceContext) -> str:
    return await ctx.remote.check(db_up_command(ctx.layout), time_limit=ctx.config.compose_limit)


async def create_database(ctx: InstanceContext) -> str:
    spec = ctx.spec()
    command = create_database_command(ctx.layout, spec.db_name, spec.odoo_version)
    return await ctx.remote.check(command, time_limit=ctx.config.create_db_limit)


async def set_admin_password(ctx: InstanceContext, running_color: str | None) -> str:
    """The admin user's password, set through Odoo itself (`odoo shell`, which hashes it):
    in a one-off container after the database's creation, or in the running colour for a
    rotation. An instance created before odoofleet generated one keeps its password."""
    password = ctx.secrets.admin_user_password
    if password is None:
        return "no admin user password recorded for this instance: left as it is"
    return await write_admin_password(ctx, password, running_color)


async def write_admin_password(
    ctx: InstanceContext, password: str, running_color: str | None
) -> str:
    layout, db_name = ctx.layout, ctx.spec().db_name
    await ctx.remote.upload(layout.admin_password_script, admin_password_script(password), 0o600)
    command = set_admin_password_command(layout, db_name, running_color)
    await ctx.remote.check(command, time_limit=ctx.config.compose_limit)
    return f"the password of the admin user of {db_name} is set"


async def app_up(ctx: InstanceContext, color: str, *, fresh: bool = False) -> str:
    """Whatever starts a colour (provisioning, start, redeploy) starts it on the instance's
    files as rendered from the settings the operation read when it began: uploaded here,
    unless this operation's layout step did. Their digest in the compose file makes `up -d`
    recreate a container whose files changed (workers/server/render.py, config_digest); `fresh`
    takes the colour's container down first, so `up -d` creates it anew even when nothing
    changed (an unhealthy container is otherwise left as it is). Its data is in named
    volumes, which `down` leaves alone."""
    uploaded = [] if "layout" in ctx.log.progress.completed else [await upload_files(ctx)]
    limit = ctx.config.compose_limit
    down = app_down_command(ctx.layout, color)
    removed = [await ctx.remote.check(down, time_limit=limit)] if fresh else []
    started = await ctx.remote.check(app_up_command(ctx.layout, color), time_limit=limit)
    return "\n".join([*uploaded, *removed, started])


async def ready(ctx: InstanceContext, color: str) -> str:
    return await wait_ready(ctx.remote, ctx.layout, color, ctx.spec().db_name, ctx.config.readiness)


async def route(ctx: InstanceContext, color: str) -> str:
    limit = ctx.config.compose_limit
    proxy = await ensure_proxy(ctx.remote, ctx.proxy, limit)
    switched = await switch_route(ctx.remote, ctx.proxy, ctx.layout, ctx.spec(), color)
    public = ctx.server.public_host_ports
    ports = await ensure_ports(ctx.remote, ctx.layout, ctx.spec(), public=public, time_limit=limit)
    return f"{proxy}\n{switched}\n{ports}"
