"""`odoo shell`: run the Python read from stdin with `env` bound, rolled back unless committed."""

from __future__ import annotations

import sys
import traceback

from . import database, log
from .models import Environment
from .options import Options

_logger = log.logger("odoo.cli.shell")


def run(options: Options) -> int:
    names = options.db_names()
    if not names:
        sys.stderr.write("No database specified (use -d or db_name in the configuration file)\n")
        return 1
    db = names[0]
    source = sys.stdin.read()
    conn = database.connect(options, db)
    try:
        with conn.cursor() as cr:
            env = Environment(cr, 1, database.filestore(options, db))
            namespace = {"env": env, "self": env.user}
            try:
                exec(compile(source, "<stdin>", "exec"), namespace)
            except Exception:
                traceback.print_exc()
                conn.rollback()
                return 1
            conn.rollback()
    finally:
        conn.close()
    return 0
