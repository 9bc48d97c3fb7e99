"""The event vocabulary, the PostgreSQL event store, secrets and the relay to NATS."""
