-- Security hardening (issue 13).
--
-- Idempotency keys, scoped by organization AND subject: one caller's key is never another's
-- (another user of the organization replaying it got the first user's reply, and a used key
-- answered differently from an unused one). A finished request keeps only what re-presents
-- its reply: the status, the headers odoofleet set (ETag, X-Position, Location) and the
-- resource's stream and version, read again through the normal masking on replay. The old
-- table kept the whole reply body, envVars opened; it is dropped with every row it held,
-- so no plaintext secret stays at rest (keys in use while upgrading start afresh).
DROP TABLE idempotency_keys;

CREATE TABLE idempotency_keys (
    org_id      text        NOT NULL,
    subject     text        NOT NULL,
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,
    status      integer,
    headers     jsonb,
    stream_id   text,
    version     bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, subject, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
-- Forgetting a stream's secrets purges the keys that replay it (events/secrets.py).
CREATE INDEX idempotency_keys_stream_id ON idempotency_keys (stream_id);

-- Revoked tokens, by `jti`: refused until `expires_at`, the latest a token minted with that
-- id can still be valid (its iat + ODOOFLEET_JWT_MAX_LIFETIME), after which the row may go.
CREATE TABLE revoked_tokens (
    jti         text        PRIMARY KEY,
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
