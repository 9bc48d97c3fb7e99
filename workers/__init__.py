"""Saga workers: the sagas and their runtime, the SSH runner, rendering of server files and the
commands run on servers."""
