"""A restore into a new instance waits for that instance's provisioning: its saga looks at the
instance each time its message comes back (a deferral: no worker slot is held meanwhile, and
a worker killed while waiting loses nothing — the message comes back to another one), and
goes on once the instance is provisioned, or records the restore failed when it never will
be (its provisioning failed, it was deleted, or it was never created)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal

from commands.instance_state import (
    Abandoned,
    Absent,
    Creating,
    Failed,
    InstanceState,
    Removed,
    Removing,
)
from commands.restore_into_new import CREATE_STEP
from workers.sagas.operation_log import StepFailed

PROVISION_STEP: Final = "provision"
# How long after the request the new instance's create may still come: the API appends it
# right after the request (milliseconds); only a process that died in between leaves none.
CREATE_GRACE: Final = timedelta(minutes=10)

Verdict = Literal["provisioned", "waiting"] | StepFailed


def provisioning_verdict(
    state: InstanceState, requested_at: datetime | None, now: datetime
) -> Verdict:
    """Whether the restore can run into the new instance now, must wait, or cannot ever."""
    match state:
        case Absent():
            if requested_at is not None and now - requested_at < CREATE_GRACE:
                return "waiting"
            return StepFailed(CREATE_STEP, "the new instance was never created")
        case Removing() | Abandoned() | Removed():
            return StepFailed(
                PROVISION_STEP, "the new instance was deleted before the backup was restored"
            )
        case Failed(message=message) if state.facts.active_color is None:
            return StepFailed(PROVISION_STEP, f"the new instance's provisioning failed: {message}")
        case Creating():
            return "waiting"
        case _ if state.facts.active_color is None:
            return "waiting"  # started again after a failed provisioning: provisioning resumed
        case _:
            return "provisioned"
