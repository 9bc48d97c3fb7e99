"""`odoo [command] [options]`: the server (default) or `shell`, like odoo-bin's dispatch."""

from __future__ import annotations

import getpass
import os
import sys

import psycopg2

from . import database, log, server, shell
from .options import OptionError, Options, load

_logger = log.logger("odoo")
RELEASE = "20261201"


def version() -> str:
    try:
        with open("/etc/odoo/version", encoding="utf-8") as baked:
            return baked.read().strip()
    except FileNotFoundError:
        return os.environ.get("ODOO_VERSION", "17.0")


def _announce(options: Options) -> None:
    _logger.info("Odoo version %s-%s", options.version, RELEASE)
    if options.config_file:
        _logger.info("Using configuration file at %s", options.config_file)
    paths = [p for p in options.get("addons_path").split(",") if p]
    addons_dir = os.path.join(options.get("data_dir"), "addons", options.version)
    _logger.info(
        "addons paths: %s", [addons_dir, *paths, "/usr/lib/python3/dist-packages/odoo/addons"]
    )
    user = options.get("db_user") or os.environ.get("PGUSER") or "default"
    host = options.get("db_host") or os.environ.get("PGHOST") or "default"
    port = options.get("db_port") or os.environ.get("PGPORT") or "default"
    _logger.info("database: %s@%s:%s", user, host, port)
    for warning in options.warnings:
        _logger.warning(warning)
    if options.major >= 19 and "http_interface" not in options.explicit:
        _logger.warning(
            "The default value of http_interface (0.0.0.0) changes to 127.0.0.1 in Odoo 20.0: "
            "set http_interface = 0.0.0.0 to keep listening on every interface."
        )


def _prepare_data_dir(options: Options) -> None:
    for sub in (os.path.join("addons", options.version), "sessions", "filestore"):
        os.makedirs(os.path.join(options.get("data_dir"), sub), exist_ok=True)


def _run_server(options: Options) -> int:
    if getpass.getuser() == "root":
        sys.stderr.write("Running as user 'root' is a security risk.\n")
    if (options.get("db_user") or os.environ.get("PGUSER")) == "postgres":
        sys.stderr.write("Using the database user 'postgres' is a security risk, aborting.\n")
        return 1
    _announce(options)
    _prepare_data_dir(options)
    for db in options.db_names():
        try:
            database.ensure(options, db)
        except psycopg2.Error as exc:
            _logger.critical(
                "Failed to initialize database `%s`.", db, exc_info=exc, extra=log.db_extra(db)
            )
            return 1
    if options.flag("stop_after_init"):
        return 0
    return server.serve(options)


def main(argv: list[str]) -> int:
    command = "server"
    if argv and not argv[0].startswith("-"):
        command, argv = argv[0], argv[1:]
    if command not in ("server", "shell"):
        sys.stderr.write(f"Unknown command {command!r}\n")
        return 1
    if argv[:1] == ["--version"]:
        print(f"Odoo Server {version()}")
        return 0
    try:
        options = load(version(), argv, os.environ)
    except OptionError as exc:
        sys.stderr.write(f"Usage: odoo [options]\n\nodoo: error: {exc}\n")
        return 2
    log.setup(options.get("log_level"))
    if command == "shell":
        _announce(options)
        return shell.run(options)
    return _run_server(options)
