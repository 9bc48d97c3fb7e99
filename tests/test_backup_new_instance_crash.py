"""A worker process killed with SIGKILL while a restore into a new instance waits for that
instance's provisioning loses nothing: another worker picks the restore up, waits on, and
restores once (each step run once, one InstanceRestored)."""

from __future__ import annotations

import signal
from pathlib import Path

from saga_fixtures import (  # noqa: F401
    Fleet,
    bare_fleet_fixture,
    steps_of,
)
from test_backup_sandbox import (
    RESTORE_INTO_NEW_STEPS,
    backed_up_acme,
    restore_into_new,
    restored_copy,
)
from test_saga_crash import Workers, workers  # noqa: F401
from waiting import eventually

from events.backup import InstanceRestored, RestoreFailed, backup_stream
from events.operation import OperationStarted, OperationStepStarted
from events.pool import Pool
from odoofleet.settings import Settings
from workers.runtime.run import SAGAS


async def test_a_worker_killed_while_a_restore_waits_for_the_new_instance_is_replaced(
    bare_fleet: Fleet,
    workers: Workers,  # noqa: F811
    tmp_path: Path,
    settings: Settings,
    pool: Pool,
    projections: None,
) -> None:
    fleet = bare_fleet
    # Everything but restores runs here; only the worker processes restore.
    fleet.start_workers(sagas=[s.trigger for s in SAGAS if s.trigger != "RestoreRequested"])
    server_id, backup_id = await backed_up_acme(fleet, tmp_path)
    fleet.sshd.arm("hold:compose-up")  # the new instance's provisioning waits meanwhile
    first = workers.start("worker-1")

    _, operation_id = await restore_into_new(settings, pool, backup_id, server_id)

    async def waiting_restore() -> bool:
        return any(isinstance(e, OperationStarted) for e in await fleet.operation(operation_id))

    await eventually(waiting_restore, timeout=120, message="the restore waits for provisioning")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    fleet.sshd.disarm("hold:compose-up")
    workers.start("worker-2")
    restored = await fleet.wait_for(
        backup_stream(backup_id), InstanceRestored, RestoreFailed, timeout=300
    )

    assert isinstance(restored, InstanceRestored), restored
    outcomes = [
        e for e in await fleet.events(backup_stream(backup_id)) if isinstance(e, InstanceRestored)
    ]
    assert len(outcomes) == 1
    operation = await fleet.operation(operation_id)
    assert len([e for e in operation if isinstance(e, OperationStarted)]) == 1
    assert steps_of(operation, OperationStepStarted) == RESTORE_INTO_NEW_STEPS
    assert restored_copy(fleet) == ("an attachment", "the orders of acme")
