"""Saga workers: the SSH runner, rendering of server files and the commands run on servers."""
