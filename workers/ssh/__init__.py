"""Talking to a server: the SSH runner, its connections, host keys, and which addresses a server
may have."""
