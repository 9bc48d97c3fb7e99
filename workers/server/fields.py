"""Validation of every value that reaches a server: in a command line, a path or a file."""

from __future__ import annotations

import re

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,48}[a-z0-9]")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DB_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
ENV_KEY = re.compile(r"[A-Z_][A-Z0-9_]*")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")
PLAIN_PATH = re.compile(r"/[A-Za-z0-9_./-]*")

COLORS = ("blue", "green")
ODOO_VERSIONS = ("15.0", "16.0", "17.0", "18.0", "19.0")
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


def check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def check_slug(slug: str) -> str:
    return check(slug, SLUG, "slug")


def check_uuid(value: str) -> str:
    return check(value, UUID, "id")


def check_db_name(name: str) -> str:
    return check(name, DB_NAME, "database name")


def check_hostname(name: str) -> str:
    return check(name, HOSTNAME, "host name")


def check_color(color: str) -> str:
    if color not in COLORS:
        raise ValueError(f"invalid colour: {color!r}")
    return color


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid port: {port}")
    return port


def check_env_key(key: str) -> str:
    return check(key, ENV_KEY, "environment variable name")


def check_root(path: str) -> str:
    """The base directory on the server: absolute, plain characters, no `..`."""
    if not PLAIN_PATH.fullmatch(path) or ".." in path or path == "/":
        raise ValueError(f"invalid base directory: {path!r}")
    return path.rstrip("/")


def check_addons_path(addons_path: str) -> str:
    """Comma-separated absolute directories of [A-Za-z0-9_./-], none containing `..`."""
    dirs = addons_path.split(",")
    for directory in dirs:
        if not PLAIN_PATH.fullmatch(directory) or ".." in directory:
            raise ValueError(f"invalid addons path entry: {directory!r}")
    return ",".join(dirs)
