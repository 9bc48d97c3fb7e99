"""Backups: the encrypted stream format, the destinations, the scheduler."""
