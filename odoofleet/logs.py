"""Logging: one JSON object per line in production, readable lines in development, and the
request / correlation / operation ids of the work in progress on every line, so a request
can be followed from the API through its events into the saga and its SSH commands."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import msgspec

from events.log_context import CONTEXT_FIELDS, current_fields
from odoofleet.settings import Settings

_encoder = msgspec.json.Encoder()


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_fields().items():
            setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{key}={getattr(record, key)}"
            for key in CONTEXT_FIELDS
            if getattr(record, key, None) is not None
        )
        return f"{line} [{ids}]" if ids else line


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # pgserver narrates every pg_ctl call and asyncssh every channel at INFO: not news.
    for chatty in ("pgserver", "asyncssh"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def quiet_known_warnings() -> None:
    """Ignore the two warnings third-party packages print while odoofleet's modules load, and
    nothing else: asyncssh's type hints name the DSA classes cryptography deprecated, and
    pgserver asks platformdirs for a runtime directory at import, which warns wherever
    XDG_RUNTIME_DIR is unset (containers, CI, `sudo`). Neither is about odoofleet's use."""
    for message, module in (
        ("DSA is deprecated", r"asyncssh\."),
        ("XDG_RUNTIME_DIR is not set", r"platformdirs\."),
    ):
        warnings.filterwarnings("ignore", message=message, module=module)
