-- Custom domains of instances (issue 16): the read model of the `domain-<uuid>` streams.
-- A removed domain has no row. The primary domain of an instance is the row with the highest
-- primary_since (the log position of its PrimaryDomainChanged).
CREATE TABLE domains (
    id                      text        PRIMARY KEY,
    org_id                  text        NOT NULL,
    instance_id             text        NOT NULL,
    name                    text        NOT NULL,
    created_at              timestamptz NOT NULL,
    primary_since           bigint,
    dns_status              text        NOT NULL,
    dns_message             text,
    dns_retry_at            timestamptz,
    ssl_expires_at          timestamptz,
    ssl_message             text,
    ssl_retry_at            timestamptz,
    certificate_request     text,
    version                 bigint      NOT NULL
);
CREATE INDEX domains_of_instance ON domains (org_id, instance_id, created_at);
CREATE INDEX domains_renewal ON domains (ssl_expires_at) WHERE ssl_expires_at IS NOT NULL;
CREATE INDEX domains_dns_retry ON domains (dns_retry_at) WHERE dns_retry_at IS NOT NULL;
