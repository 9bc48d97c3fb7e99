-- Idempotency keys of the API (API.md: POST /api/instances, /api/servers, .../control).
-- One row per organization and key: the request's fingerprint and, once it has finished,
-- the response to replay. A row with no status is a request still in flight. Rows older
-- than 24 hours are expired: the key may be used again.
CREATE TABLE idempotency_keys (
    org_id      text        NOT NULL,
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,
    status      integer,
    headers     jsonb,
    body        bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
