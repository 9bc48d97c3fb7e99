-- The event log: the single source of truth (DESIGN.md, "Event store").
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction: readers order and checkpoint by (tx_id, position).
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (stream_id, version)
);

CREATE INDEX events_tx_id_position ON events (tx_id, position);
CREATE INDEX events_recorded_at ON events USING brin (recorded_at);

-- One row per stream: the expected-version check is a single-row compare-and-set.
CREATE TABLE streams (
    stream_id text   PRIMARY KEY,
    version   bigint NOT NULL
);

-- Per-stream data keys wrapped by the master key; deleting a row crypto-shreds the stream.
CREATE TABLE stream_keys (
    stream_id   text        PRIMARY KEY,
    wrapped_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Streams whose key was shredded on purpose (so readers can tell "forgotten" from "missing").
CREATE TABLE forgotten_streams (
    stream_id    text        PRIMARY KEY,
    forgotten_at timestamptz NOT NULL DEFAULT now()
);

-- Named read positions (relay, projections): the last (tx_id, position) taken.
CREATE TABLE checkpoints (
    name       text        PRIMARY KEY,
    tx_id      xid8        NOT NULL DEFAULT '0',
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- No NOTIFY trigger on events: a notifying transaction holds a cluster-wide lock until its commit
-- is flushed, which would let only one append commit per WAL flush. events.store sends the
-- wake-up NOTIFY (channel odoofleet_events) in its own transaction after each append commits.
