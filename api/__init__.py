"""The HTTP API: a Litestar app over the commands and the read models (API.md)."""
