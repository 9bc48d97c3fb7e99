"""Custom domains' DNS checks and TLS certificates: the ACME client use (HTTP-01), the DNS
checks against the configured resolver, and the workers' leader that renews certificates and
retries DNS checks when they are due."""
