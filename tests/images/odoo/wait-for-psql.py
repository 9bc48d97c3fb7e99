#!/usr/bin/python3
"""Wait until PostgreSQL accepts a connection to the `postgres` database, or give up.

Settings come from odoo.conf first, then the --db_* arguments, then libpq's own PG* variables
(unset ones are left to libpq's defaults)."""

import argparse
import configparser
import os
import sys
import time

import psycopg2


def main() -> int:
    parser = argparse.ArgumentParser()
    for key in ("db_host", "db_port", "db_user", "db_password"):
        parser.add_argument(f"--{key}")
    parser.add_argument("--timeout", type=int, default=5)
    args = parser.parse_args()
    conf = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"))
    conf.read(os.environ.get("ODOO_RC", "/etc/odoo/odoo.conf"))
    from_conf = dict(conf.items("options")) if conf.has_section("options") else {}
    params = {}
    for key in ("host", "port", "user", "password"):
        value = from_conf.get(f"db_{key}") or getattr(args, f"db_{key}")
        if value and value != "False":
            params[key] = value
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            psycopg2.connect(dbname="postgres", connect_timeout=3, **params).close()
            return 0
        except psycopg2.OperationalError as exc:
            error = exc
        if time.monotonic() >= deadline:
            print(f"Database connection failure: {error}", file=sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
