"""The operator console: a small static app at `/` that calls the JSON API under `/api`."""
