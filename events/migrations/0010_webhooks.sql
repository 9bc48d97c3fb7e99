-- Outgoing webhooks (issue 17). Endpoints are event-sourced (`webhook-<uuid>` streams); their
-- read model holds no secret. Deliveries are the delivery worker's own durable state, not a
-- projection: one row per (endpoint, event) with its attempts, so the event log does not grow
-- with the delivery rate (as health observations do not grow it with the probe rate).
CREATE TABLE webhook_endpoints (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    url text NOT NULL,
    events jsonb NOT NULL,
    description text NOT NULL,
    enabled boolean NOT NULL,
    disabled_reason text,
    secret_rotated_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL
);
CREATE INDEX webhook_endpoints_by_org ON webhook_endpoints (org_id, created_at, id);

-- `sequence` is the JetStream stream sequence of the event: log order as the relay published it.
CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    endpoint_id text NOT NULL,
    org_id text NOT NULL,
    event_id uuid NOT NULL,
    sequence bigint NOT NULL,
    event_type text NOT NULL,
    payload text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, sequence)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (endpoint_id, created_at DESC, id);

CREATE TABLE webhook_attempts (
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    attempted_at timestamptz NOT NULL,
    outcome text NOT NULL,
    status_code integer,
    latency_ms integer NOT NULL,
    response_excerpt text NOT NULL,
    error text,
    PRIMARY KEY (delivery_id, attempt)
);

-- One lane per endpoint: which worker delivers it now (a lease) and when its oldest pending
-- delivery is due ('infinity': nothing to do). Deliveries of one endpoint go one at a time, in
-- order; a receiver that hangs holds its own lane and nothing else.
CREATE TABLE webhook_lanes (
    endpoint_id text PRIMARY KEY,
    due_at timestamptz NOT NULL,
    leased_until timestamptz NOT NULL DEFAULT '-infinity',
    leased_by text
);
CREATE INDEX webhook_lanes_due ON webhook_lanes (due_at);
