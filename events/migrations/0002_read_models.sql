-- The read models the projectors write and the API reads (projections/, DESIGN.md
-- "Projections"). Defined here so that every migrated database has them; a rebuild clones
-- these definitions (projections/runtime/clone.py), so this file is the one place they are spelled.
-- Secrets stay sealed: env_vars hold {"KEY": {"sealed": "v1:..."}} values, never plaintext.

CREATE TABLE instances (
    id                          text        PRIMARY KEY,
    org_id                      text        NOT NULL,
    name                        text        NOT NULL,
    slug                        text        NOT NULL,
    server_id                   text        NOT NULL,
    project_id                  text,
    template_id                 text,
    branch                      text,
    environment_type            text        NOT NULL,
    odoo_version                text        NOT NULL,
    odoo_edition                text        NOT NULL,
    status                      text        NOT NULL,
    status_message              text,
    active_color                text,
    addons_path                 text,
    env_vars                    jsonb       NOT NULL,
    auto_subdomain              text        NOT NULL,
    domains                     jsonb       NOT NULL,
    http_port                   integer     NOT NULL,
    http_port_host              integer     NOT NULL,
    longpolling_port            integer     NOT NULL,
    longpolling_port_host       integer     NOT NULL,
    workers                     integer     NOT NULL,
    max_cron_threads            integer     NOT NULL,
    limit_memory_hard           bigint      NOT NULL,
    limit_memory_soft           bigint      NOT NULL,
    limit_time_cpu              integer     NOT NULL,
    limit_time_real             integer     NOT NULL,
    log_level                   text        NOT NULL,
    mcp_write_enabled           boolean     NOT NULL,
    last_restart_at             timestamptz,
    restart_count               integer     NOT NULL,
    enterprise_build_id         text,
    enterprise_deployed_at      timestamptz,
    enterprise_update_available boolean,
    wkhtmltopdf_status          text,
    wkhtmltopdf_version         text,
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    version                     bigint      NOT NULL
);

-- Keyset pagination, newest first, for each list filter (projections/instances.py).
CREATE INDEX instances_list ON instances (org_id, created_at DESC, id DESC);
CREATE INDEX instances_list_by_server ON instances (org_id, server_id, created_at DESC, id DESC);
CREATE INDEX instances_list_by_status ON instances (org_id, status, created_at DESC, id DESC);

CREATE TABLE servers (
    id                   text        PRIMARY KEY,
    org_id               text        NOT NULL,
    name                 text        NOT NULL,
    host                 text        NOT NULL,
    port                 integer     NOT NULL,
    ssh_user             text        NOT NULL,
    auth_method          text        NOT NULL,
    status               text        NOT NULL,
    status_message       text,
    host_key_fingerprint text,
    os_name              text,
    os_version           text,
    cpu_cores            integer,
    ram_total_bytes      bigint,
    docker_version       text,
    max_ssh_sessions     integer     NOT NULL,
    last_seen_at         timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    version              bigint      NOT NULL
);

CREATE INDEX servers_list ON servers (org_id, created_at, id);

CREATE TABLE operations (
    id           text        PRIMARY KEY,
    org_id       text        NOT NULL,
    instance_id  text,
    server_id    text        NOT NULL,
    type         text        NOT NULL,
    status       text        NOT NULL,
    started_at   timestamptz NOT NULL,
    completed_at timestamptz,
    error        text,
    steps        jsonb       NOT NULL,
    version      bigint      NOT NULL
);

CREATE INDEX operations_by_instance ON operations (org_id, instance_id, started_at DESC, id DESC);

-- The latest observation per instance; the score columns are filled by the health scorer.
CREATE TABLE health (
    instance_id        text             PRIMARY KEY,
    org_id             text             NOT NULL,
    server_id          text             NOT NULL,
    status             text             NOT NULL,
    container_state    text,
    http_status        integer,
    response_time_ms   double precision,
    restart_count      integer,
    oom_killed         boolean,
    memory_bytes       bigint,
    memory_limit_bytes bigint,
    cpu_percent        double precision,
    message            text             NOT NULL,
    last_seen_at       timestamptz,
    last_checked_at    timestamptz      NOT NULL,
    version            bigint           NOT NULL,
    score              integer,
    grade              text,
    score_updated_at   timestamptz,
    factors            jsonb
);

-- One row per auditable event (API.md "Audit trail"); before/after have secrets masked.
CREATE TABLE audit_log (
    position       bigint      PRIMARY KEY,
    id             uuid        NOT NULL,
    org_id         text        NOT NULL,
    stream_id      text        NOT NULL,
    action         text        NOT NULL,
    resource_type  text        NOT NULL,
    resource_id    text        NOT NULL,
    resource_name  text,
    user_id        text        NOT NULL,
    user_name      text        NOT NULL,
    ip_address     text,
    user_agent     text,
    before_state   jsonb,
    after_state    jsonb,
    event_type     text        NOT NULL,
    correlation_id text        NOT NULL,
    created_at     timestamptz NOT NULL
);

CREATE INDEX audit_log_recent ON audit_log (org_id, created_at DESC, position DESC);
CREATE INDEX audit_log_by_resource
    ON audit_log (org_id, resource_type, resource_id, created_at DESC, position DESC);
CREATE INDEX audit_log_by_user ON audit_log (org_id, user_id, created_at DESC, position DESC);
CREATE INDEX audit_log_by_action ON audit_log (org_id, action, created_at DESC, position DESC);
CREATE INDEX audit_log_by_stream ON audit_log (stream_id);

-- The audit projection's own fold of each resource stream: the "before" of the next change
-- (MessagePack of the row; secrets in it stay sealed).
CREATE TABLE audit_subjects (
    stream_id text  PRIMARY KEY,
    state     bytea NOT NULL
);

-- Each projection's health as its runners report it (`odoofleet projections status`).
CREATE TABLE projection_status (
    name            text        PRIMARY KEY,
    state           text        NOT NULL,
    last_error      text,
    failed_position bigint,
    rebuilt_at      timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
