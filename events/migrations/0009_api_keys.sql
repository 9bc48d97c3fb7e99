-- API keys (issue 17). Keys are event-sourced (`apikey-<uuid>` streams; authentication reads
-- the key's own stream, so a revocation holds from the next request). `api_keys` is their read
-- model for listing, with no secret; `api_key_usage` is the API's own batched record of when
-- each key was last used (not derived from the log: a rebuild of api_keys leaves it alone).
CREATE TABLE api_keys (
    id           text        PRIMARY KEY,
    org_id       text        NOT NULL,
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    permissions  jsonb       NOT NULL,
    instance_ids jsonb,
    expires_at   timestamptz,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    version      bigint      NOT NULL
);
CREATE INDEX api_keys_list ON api_keys (org_id, created_at, id);

CREATE TABLE api_key_usage (
    key_id       text        PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);
