"""The backup decider, schedule times and GFS retention: given / when / then, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from builders import ID, create_command
from croniter import croniter  # type: ignore[import-untyped]

from commands import backup, instance, restore_credentials
from commands.backup_retention import expired, expires_at, latest_due
from commands.instance_state import Absent, InstanceState
from commands.instance_state import fold as instance_fold
from commands.instance_state import initial_state as instance_initial_state
from commands.refusals import InstanceNotFound
from events.backup import (
    BackupCompleted,
    BackupDeleted,
    BackupDeletionRequested,
    BackupExpired,
    BackupFailed,
    BackupPart,
    BackupRequested,
    InstanceRestored,
    RestoreFailed,
    RestoreRequested,
)
from events.instance import (
    ActionRequested,
    InstanceProvisioned,
    McpCredentialsIssued,
    McpCredentialsRequested,
    ProvisioningFailed,
    RemovalRequested,
)
from events.registry import DomainEvent
from events.secrets import Sealed
from workers.sagas.operation_log import StepFailed
from workers.sagas.restore_new import CREATE_GRACE, provisioning_verdict

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
PART = BackupPart(
    name="database", key="i/b/database.dump.ofb", size=10, stored_size=60, sha256="ab"
)


def requested(operation_id: str = "op-1") -> BackupRequested:
    return BackupRequested(
        backup_id="b-1",
        instance_id="i-1",
        operation_id=operation_id,
        destination_id="d-1",
        reason="manual",
        data_key=Sealed("v1:key"),
        requested_at=NOW,
    )


def completed() -> BackupCompleted:
    return BackupCompleted(
        backup_id="b-1", instance_id="i-1", operation_id="op-1", parts=[PART], completed_at=NOW
    )


def given(*events: DomainEvent) -> backup.BackupState:
    return backup.fold(events)


def when(state: backup.BackupState, command: backup.BackupCommand) -> list[DomainEvent]:
    return backup.decide(command, state, NOW)


def request_command(operation_id: str = "op-1") -> backup.RequestBackup:
    return backup.RequestBackup(
        backup_id="b-1",
        instance_id="i-1",
        operation_id=operation_id,
        destination_id="d-1",
        reason="manual",
        data_key=Sealed("v1:key"),
    )


def test_a_backup_is_requested_once() -> None:
    assert when(given(), request_command()) == [requested()]
    assert when(given(requested()), request_command()) == []


def test_another_request_on_a_taken_backup_stream_is_refused() -> None:
    with pytest.raises(backup.BackupBusy):
        when(given(requested()), request_command("op-2"))


def test_a_completed_backup_records_its_parts_once() -> None:
    record = backup.RecordBackupCompleted(operation_id="op-1", parts=(PART,))
    assert when(given(requested()), record) == [completed()]
    assert when(given(requested(), completed()), record) == []


def test_a_failure_after_the_completion_records_nothing() -> None:
    record = backup.RecordBackupFailed(operation_id="op-1", step="database", message="x")
    assert when(given(requested(), completed()), record) == []
    failed = when(given(requested()), record)
    assert failed == [
        BackupFailed(
            backup_id="b-1", instance_id="i-1", operation_id="op-1", step="database", message="x"
        )
    ]


def test_a_running_backup_cannot_be_deleted_or_restored() -> None:
    with pytest.raises(backup.BackupBusy):
        when(given(requested()), backup.DeleteBackup(operation_id="op-d"))
    with pytest.raises(backup.BackupBusy):
        when(
            given(requested()), backup.RequestRestore(operation_id="op-r", target_instance_id="i-1")
        )


def test_one_restore_at_a_time_and_its_outcome_once() -> None:
    restore = backup.RequestRestore(operation_id="op-r", target_instance_id="i-2", neutralize=True)
    asked = when(given(requested(), completed()), restore)
    assert asked == [
        RestoreRequested(
            backup_id="b-1",
            operation_id="op-r",
            source_instance_id="i-1",
            target_instance_id="i-2",
            neutralize=True,
            requested_at=NOW,
        )
    ]
    state = given(requested(), completed(), *asked)
    assert when(state, restore) == []
    with pytest.raises(backup.BackupBusy):
        when(state, backup.RequestRestore(operation_id="op-other", target_instance_id="i-1"))
    with pytest.raises(backup.BackupBusy):
        when(state, backup.DeleteBackup(operation_id="op-d"))
    done = when(state, backup.RecordRestored(operation_id="op-r"))
    assert done == [
        InstanceRestored(
            backup_id="b-1", operation_id="op-r", target_instance_id="i-2", restored_at=NOW
        )
    ]
    after = given(requested(), completed(), *asked, *done)
    failed = backup.RecordRestoreFailed(operation_id="op-r", step="verify", message="x")
    assert when(after, failed) == []


def test_a_failed_restore_is_recorded_with_its_step() -> None:
    restore = backup.RequestRestore(operation_id="op-r", target_instance_id="i-1")
    state = given(requested(), completed(), *when(given(requested(), completed()), restore))
    failed = when(
        state, backup.RecordRestoreFailed(operation_id="op-r", step="verify", message="m")
    )
    assert failed == [
        RestoreFailed(
            backup_id="b-1",
            operation_id="op-r",
            target_instance_id="i-1",
            step="verify",
            message="m",
        )
    ]


def test_a_restore_into_a_new_instance_is_recorded_as_one_and_holds_the_backup() -> None:
    restore = backup.RequestRestore(
        operation_id="op-r", target_instance_id="i-new", new_instance=True
    )
    asked = when(given(requested(), completed()), restore)
    assert asked == [
        RestoreRequested(
            backup_id="b-1",
            operation_id="op-r",
            source_instance_id="i-1",
            target_instance_id="i-new",
            neutralize=False,
            new_instance=True,
            requested_at=NOW,
        )
    ]
    state = given(requested(), completed(), *asked)
    with pytest.raises(backup.BackupBusy):
        when(state, backup.DeleteBackup(operation_id="op-d"))
    # Its create refused: the failure at `create` frees the backup for another restore.
    failed = backup.RecordRestoreFailed(operation_id="op-r", step="create", message="slug")
    after = given(requested(), completed(), *asked, *when(state, failed))
    again = backup.RequestRestore(operation_id="op-2", target_instance_id="i-2")
    assert [type(e) for e in when(after, again)] == [RestoreRequested]


def new_instance(*events: DomainEvent) -> InstanceState:
    created = instance.decide(create_command(), instance_initial_state(), NOW)
    return instance_fold([*created, *events])


PROVISIONED = InstanceProvisioned(instance_id=ID, operation_id="op-p", active_color="blue")


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        (new_instance(), "waiting"),
        (new_instance(PROVISIONED), "provisioned"),
        (
            new_instance(ActionRequested(instance_id=ID, operation_id="a", action="start")),
            "waiting",
        ),
    ],
)
def test_a_restore_into_a_new_instance_waits_for_its_provisioning(
    state: InstanceState, verdict: str
) -> None:
    assert provisioning_verdict(state, NOW, NOW) == verdict


def test_a_restore_into_a_new_instance_that_will_never_be_provisioned_fails_and_says_why() -> None:
    failed = ProvisioningFailed(instance_id=ID, operation_id="p", step="pull", message="no image")
    removed = RemovalRequested(instance_id=ID, operation_id="r")
    later = NOW + CREATE_GRACE

    outcomes = [
        provisioning_verdict(new_instance(failed), NOW, NOW),
        provisioning_verdict(new_instance(removed), NOW, NOW),
        provisioning_verdict(Absent(), NOW, later),
        provisioning_verdict(Absent(), None, NOW),
    ]

    assert provisioning_verdict(Absent(), NOW, later - timedelta(seconds=1)) == "waiting"
    assert [(o.step, o.message) for o in outcomes if isinstance(o, StepFailed)] == [
        ("provision", "the new instance's provisioning failed: no image"),
        ("provision", "the new instance was deleted before the backup was restored"),
        ("create", "the new instance was never created"),
        ("create", "the new instance was never created"),
    ]


def test_a_restore_into_another_instance_asks_for_its_mcp_credentials_once() -> None:
    asked = restore_credentials.RequestMcpCredentialsAfterRestore(restore_operation_id="op-r")
    target = new_instance(PROVISIONED)

    requested_now = restore_credentials.decide(asked, target, NOW)
    operation_id = restore_credentials.credentials_operation("op-r")
    issued = McpCredentialsIssued(
        instance_id=ID, operation_id=operation_id, login="odoofleet-mcp", api_key=Sealed("v1:k")
    )

    assert requested_now == [McpCredentialsRequested(instance_id=ID, operation_id=operation_id)]
    assert operation_id == restore_credentials.credentials_operation("op-r") != "op-r"
    assert restore_credentials.decide(asked, new_instance(PROVISIONED, issued), NOW) == []
    removing = new_instance(PROVISIONED, RemovalRequested(instance_id=ID, operation_id="rm"))
    assert restore_credentials.decide(asked, removing, NOW) == []
    with pytest.raises(InstanceNotFound):
        restore_credentials.decide(asked, Absent(), NOW)


def test_an_expired_backup_ends_as_expired_and_a_deleted_one_as_deleted() -> None:
    for expiring, ended in ((True, BackupExpired), (False, BackupDeleted)):
        asked = when(
            given(requested(), completed()),
            backup.DeleteBackup(operation_id="op-d", expired=expiring),
        )
        assert asked == [
            BackupDeletionRequested(
                backup_id="b-1", instance_id="i-1", operation_id="op-d", expired=expiring
            )
        ]
        state = given(requested(), completed(), *asked)
        assert when(state, backup.DeleteBackup(operation_id="op-again")) == []
        done = when(state, backup.RecordBackupDeleted(operation_id="op-d"))
        assert [type(e) for e in done] == [ended]
        with pytest.raises(backup.BackupNotFound):
            when(
                given(requested(), completed(), *asked, *done),
                backup.DeleteBackup(operation_id="x"),
            )


def test_a_schedule_is_due_at_its_latest_time_only_once() -> None:
    since = NOW - timedelta(days=3)  # the workers were down for three nightly windows
    assert latest_due("0 3 * * *", "UTC", NOW + timedelta(minutes=5), since) == NOW
    assert latest_due("0 3 * * *", "UTC", NOW + timedelta(minutes=5), NOW) is None
    assert (
        latest_due("0 3 * * *", "UTC", NOW - timedelta(minutes=1), NOW - timedelta(hours=1)) is None
    )


def test_a_schedule_reads_its_cron_in_its_own_time_zone() -> None:
    due = latest_due("0 3 * * *", "Europe/Brussels", NOW, NOW - timedelta(days=1))
    assert due is not None
    assert due.astimezone(UTC) == NOW - timedelta(hours=1)


def test_retention_keeps_the_newest_of_each_recent_day_week_and_month() -> None:
    daily = [(f"d{n}", NOW - timedelta(days=n)) for n in range(120)]
    twice_today = [("today-early", NOW - timedelta(hours=2)), *daily]
    gone = set(expired(twice_today, "UTC", keep_daily=7, keep_weekly=4, keep_monthly=3))
    kept = {backup_id for backup_id, _ in twice_today} - gone
    assert {f"d{n}" for n in range(7)} <= kept
    assert "today-early" in gone  # the newer one of that day is kept
    assert len(kept) <= 7 + 4 + 3
    assert "d119" in gone


def test_retention_never_lets_go_of_the_newest_backup() -> None:
    only = [("b", NOW)]
    assert expired(only, "UTC", keep_daily=0, keep_weekly=0, keep_monthly=0) == []


@pytest.mark.parametrize("cron", ["0 3 * * *", "0 */8 * * *", "30 2 * * 1"])
def test_a_scheduled_backup_expires_when_retention_lets_it_go(cron: str) -> None:
    keep = {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 3}
    first = datetime(2026, 11, 2, 1, 0, tzinfo=ZoneInfo("Europe/Brussels"))
    due = croniter(cron, first)
    taken = [due.get_next(datetime) for _ in range(400)]  # the schedule running unchanged
    for index, at in enumerate(taken[:60]):
        expiry = expires_at(at, cron, "Europe/Brussels", **keep)
        assert expiry is not None
        assert expiry > at
        later = taken.index(expiry)  # the expiry is the due time of a later backup

        def gone(upto: int, at: datetime = at) -> bool:
            backups = [(str(n), t) for n, t in enumerate(taken[: upto + 1])]
            return str(taken.index(at)) in expired(backups, "Europe/Brussels", **keep)

        assert not gone(later - 1), (index, expiry)
        assert gone(later), (index, expiry)


def test_an_expiry_beyond_the_look_ahead_is_unknown() -> None:
    at = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    assert expires_at(at, "* * * * *", "UTC", keep_daily=0, keep_weekly=0, keep_monthly=0) == (
        at + timedelta(minutes=1)
    )
    last_of_the_month = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)  # kept for a year of minutes
    assert (
        expires_at(
            last_of_the_month, "* * * * *", "UTC", keep_daily=7, keep_weekly=4, keep_monthly=12
        )
        is None
    )
