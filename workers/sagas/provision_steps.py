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
from workers.sagas.proxy_steps import ports_work, proxy_work, route_work
from workers.sagas.readiness import wait_limit, wait_ready, waited
from workers.sagas.remote_steps import AnyStep, RemoteStep, RemoteWork, run_remote_step
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
    wait_db_healthy_command,
)
from workers.server.credentials import load_server
from workers.server.facts import parse_server_facts, preflight_problems, server_facts_command
from workers.server.payload import Payload
from workers.server.remote import NotYet, StepError, poll
from workers.server.render import instance_files
from workers.server.shell import cmd, script
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

    async def steps(ctx: InstanceContext) -> list[AnyStep]:
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


def provision_steps(ctx: InstanceContext, *, fresh_app: bool = False) -> list[AnyStep]:
    """From the layout to a started app colour in one SSH command, each step recorded as the
    server reports it (workers/sagas/remote_steps.py); the readiness of the colour is looked
    at from here, then the route is one more command."""
    return [
        Step("server", lambda: wait_for_server(ctx)),
        Step("preflight", lambda: preflight(ctx)),
        RemoteStep("layout", lambda payload: lay_out(ctx, payload)),
        RemoteStep("db-up", lambda _: db_up(ctx)),
        RemoteStep("db-healthy", lambda _: wait_db_healthy(ctx)),
        RemoteStep("create-db", lambda _: create_database(ctx)),
        RemoteStep("admin-password", lambda payload: set_admin_password(ctx, payload)),
        # A resumed provisioning may have its layout from an earlier attempt: the files of
        # the settings of then, so the app colour starts on freshly installed ones.
        RemoteStep(
            "app-up",
            lambda p: app_up_work(ctx, p, FIRST_COLOR, install=fresh_app, fresh=fresh_app),
        ),
        Step("readiness", lambda: ready(ctx, FIRST_COLOR)),
        RemoteStep("route", lambda payload: route(ctx, payload, FIRST_COLOR)),
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


def lay_out(ctx: InstanceContext, payload: Payload) -> RemoteWork:
    spec, layout = ctx.spec(), ctx.layout
    command = script(
        layout_command(layout),
        networks_and_volumes_command(layout, spec.instance_id),
        install_files(ctx, payload),
    )
    return RemoteWork(command, ctx.config.compose_limit)


def install_files(ctx: InstanceContext, payload: Payload) -> str:
    """Every file of the instance directory, rendered from the settings the operation read,
    and a line that lists them."""
    layout, files = ctx.layout, instance_files(ctx.spec())
    listing = f"{layout.dir}: " + ", ".join(rendered.path for rendered in files)
    return script(
        *(payload.install(f"{layout.dir}/{f.path}", f.content, f.mode) for f in files),
        cmd("printf", "%s\\n", listing),
    )


def db_up(ctx: InstanceContext) -> RemoteWork:
    return RemoteWork(db_up_command(ctx.layout), ctx.config.compose_limit)


def wait_db_healthy(ctx: InstanceContext) -> RemoteWork:
    """The database's health awaited on the server (no round trip per look)."""
    patience = ctx.config.readiness
    command = wait_db_healthy_command(ctx.layout, *waited(patience))
    return RemoteWork(command, wait_limit(patience))


def create_database(ctx: InstanceContext) -> RemoteWork:
    spec = ctx.spec()
    command = create_database_command(ctx.layout, spec.db_name, spec.odoo_version)
    return RemoteWork(command, ctx.config.create_db_limit)


def set_admin_password(ctx: InstanceContext, payload: Payload) -> RemoteWork:
    """The admin user's password, set through Odoo itself (`odoo shell`, which hashes it) in
    a one-off container after the database's creation. An instance created before odoofleet
    generated one keeps its password."""
    password = ctx.secrets.admin_user_password
    if password is None:
        said = "no admin user password recorded for this instance: left as it is"
        return RemoteWork(cmd("printf", "%s\\n", said), ctx.config.compose_limit)
    return RemoteWork(admin_password_work(ctx, payload, password, None), ctx.config.compose_limit)


def admin_password_work(
    ctx: InstanceContext, payload: Payload, password: str, running_color: str | None
) -> str:
    """The script `odoo shell` reads installed, then run (in a one-off container, or in the
    running colour for a rotation); what it prints is shown only if it fails."""
    layout, db_name = ctx.layout, ctx.spec().db_name
    content = admin_password_script(password)
    installed = payload.install(layout.admin_password_script, content, 0o600)
    run = set_admin_password_command(layout, db_name, running_color)
    said = cmd("printf", "%s\\n", f"the password of the admin user of {db_name} is set")
    shown = "{ printf '%s\\n' \"$out\" >&2; exit 1; }"
    return script(installed, f"out=$({run} 2>&1) && {said} || {shown}")


async def write_admin_password(
    ctx: InstanceContext, password: str, running_color: str | None
) -> str:
    """The admin user's password set (a rotation: in `running_color`), in one command."""
    payload = Payload()
    command = admin_password_work(ctx, payload, password, running_color)
    return await ctx.remote.check(command, time_limit=ctx.config.compose_limit, payload=payload)


def app_up_work(
    ctx: InstanceContext, payload: Payload, color: str, *, install: bool, fresh: bool
) -> RemoteWork:
    """Whatever starts a colour (provisioning, start, redeploy) starts it on the instance's
    files as rendered from the settings the operation read when it began: installed here
    (`install`), unless this operation's layout step does (a provisioning's first attempt).
    Their digest in the compose file makes `up -d`
    recreate a container whose files changed (workers/server/render.py, config_digest); `fresh`
    takes the colour's container down first, so `up -d` creates it anew even when nothing
    changed (an unhealthy container is otherwise left as it is). Its data is in named
    volumes, which `down` leaves alone."""
    installed = [install_files(ctx, payload)] if install else []
    removed = [app_down_command(ctx.layout, color)] if fresh else []
    command = script(*installed, *removed, app_up_command(ctx.layout, color))
    return RemoteWork(command, ctx.config.compose_limit * (2 if fresh else 1))


async def app_up(ctx: InstanceContext, color: str, *, fresh: bool = False) -> str:
    """`app_up_work` in a command of its own (a start, a redeploy, a restore)."""
    step = RemoteStep("app-up", lambda p: app_up_work(ctx, p, color, install=True, fresh=fresh))
    return await run_remote_step(step, ctx.remote)


async def ready(ctx: InstanceContext, color: str) -> str:
    return await wait_ready(ctx.remote, ctx.layout, color, ctx.spec().db_name, ctx.config.readiness)


def route(ctx: InstanceContext, payload: Payload, color: str) -> RemoteWork:
    """The proxy running, the instance's route pointing at `color`, its host ports published."""
    limit = ctx.config.compose_limit
    spec, public = ctx.spec(), ctx.server.public_host_ports
    command = script(
        proxy_work(payload, ctx.proxy),
        route_work(payload, ctx.proxy, ctx.layout, spec, color),
        ports_work(payload, ctx.layout, spec, public=public),
    )
    return RemoteWork(command, 3 * limit)
