"""Log lines shaped like Odoo's: `2026-12-06 02:40:00,123 1 INFO db odoo.service.server: ...`."""

from __future__ import annotations

import logging
import os
import sys


class _OdooFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.pid = os.getpid()
        record.dbname = getattr(record, "dbname", "?")
        return super().format(record)


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _OdooFormatter("%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    levels = {"debug": logging.DEBUG, "warn": logging.WARNING, "error": logging.ERROR}
    root.setLevel(levels.get(level, logging.INFO))


def logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def db_extra(db: str | None) -> dict[str, str]:
    return {"dbname": db or "?"}
