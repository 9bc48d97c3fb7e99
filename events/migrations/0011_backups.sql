-- Backups (issue 15). Backups, destinations and schedules are event-sourced (`backup-<uuid>`,
-- `backupdest-<uuid>`, `backupschedule-<instance uuid>` streams); these are their read models,
-- with no secret (no data key, no credential). `backup_schedule_runs` is the scheduler's own
-- durable state: the due time it last requested per instance (not derived from the log).
CREATE TABLE backups (
    id              text        PRIMARY KEY,
    org_id          text        NOT NULL,
    instance_id     text        NOT NULL,
    destination_id  text        NOT NULL,
    reason          text        NOT NULL,
    status          text        NOT NULL,
    operation_id    text        NOT NULL,
    parts           jsonb       NOT NULL,
    size            bigint,
    stored_size     bigint,
    failed_step     text,
    error           text,
    due_at          timestamptz,
    requested_at    timestamptz NOT NULL,
    completed_at    timestamptz,
    deleted_at      timestamptz,
    last_restore_status text,
    last_restored_at timestamptz,
    version         bigint      NOT NULL
);
CREATE INDEX backups_by_instance ON backups (org_id, instance_id, requested_at DESC, id DESC);

CREATE TABLE backup_destinations (
    id          text        PRIMARY KEY,
    org_id      text        NOT NULL,
    name        text        NOT NULL,
    kind        text        NOT NULL,
    settings    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    version     bigint      NOT NULL
);
CREATE INDEX backup_destinations_by_org ON backup_destinations (org_id, created_at, id);

CREATE TABLE backup_schedules (
    instance_id     text        PRIMARY KEY,
    org_id          text        NOT NULL,
    cron            text        NOT NULL,
    timezone        text        NOT NULL,
    destination_id  text        NOT NULL,
    keep_daily      integer     NOT NULL,
    keep_weekly     integer     NOT NULL,
    keep_monthly    integer     NOT NULL,
    set_at          timestamptz NOT NULL,
    version         bigint      NOT NULL
);

CREATE TABLE backup_schedule_runs (
    instance_id text        PRIMARY KEY,
    last_due_at timestamptz NOT NULL
);
