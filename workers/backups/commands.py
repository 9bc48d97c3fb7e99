"""The command lines a backup and a restore run on the instance's server: the database is
dumped and restored inside its own db container (no port is opened), the filestore is read
and written through a throwaway container of the database image holding its volume."""

from __future__ import annotations

from typing import Final

from workers.odoo.api_user import API_LOGIN
from workers.server.layout import InstanceLayout
from workers.server.render import POSTGRES_IMAGE
from workers.server.shell import cmd

DATA: Final = "/data"


def dump_database_command(layout: InstanceLayout, db_name: str) -> str:
    return cmd(
        "docker", "exec", layout.db_container, "pg_dump", "-U", "odoo", "--format=custom", db_name
    )


def _with_filestore(layout: InstanceLayout, script: str, *, writable: bool) -> str:
    mount = f"{layout.filestore_volume}:{DATA}" + ("" if writable else ":ro")
    run = ["docker", "run", "--rm", "-i", "--network", "none", "-v", mount, "--entrypoint"]
    return cmd(*run, "sh", POSTGRES_IMAGE, "-c", script)


def archive_filestore_command(layout: InstanceLayout, db_name: str) -> str:
    """A tar of `filestore/<db>` (an empty tar when Odoo has stored no attachment yet)."""
    store = f"filestore/{db_name}"
    script = (
        f"cd {DATA} && if [ -d {cmd(store)} ]; then tar --numeric-owner -cf - {cmd(store)};"
        " else tar -cf - -T /dev/null; fi"
    )
    return _with_filestore(layout, script, writable=False)


def restore_filestore_command(layout: InstanceLayout, db_name: str) -> str:
    """The tar on standard input becomes `filestore/<db>` (whatever database it was taken
    from: its top two levels are dropped), replacing what was there."""
    target = cmd(f"{DATA}/filestore/{db_name}")
    script = (
        f"rm -rf {target} && mkdir -p {target} &&"
        f" tar --numeric-owner -xf - -C {target} --strip-components=2 &&"
        # The owner of the filestore directory itself, as Odoo created its parent.
        f" chown --reference={DATA}/filestore {target} 2>/dev/null; true"
    )
    return _with_filestore(layout, script, writable=True)


def filestore_files_command(layout: InstanceLayout, db_name: str) -> str:
    """How many files the restored filestore holds (a missing one is an error)."""
    target = cmd(f"{DATA}/filestore/{db_name}")
    return _with_filestore(
        layout, f"test -d {target} && find {target} -type f | wc -l", writable=False
    )


def _psql(layout: InstanceLayout, database: str, *, stdin: bool = False) -> list[str]:
    flags = ["-i"] if stdin else []
    return ["docker", "exec", *flags, layout.db_container, "psql", "-U", "odoo", "-d", database]


def recreate_database_command(layout: InstanceLayout, db_name: str) -> str:
    """The database dropped (its connections ended) and created empty, for pg_restore."""
    psql = [*_psql(layout, "postgres"), "-v", "ON_ERROR_STOP=1", "-c"]
    quoted = '"' + db_name.replace('"', '""') + '"'
    return " && ".join(
        (
            cmd(*psql, f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"),
            cmd(*psql, f"CREATE DATABASE {quoted} OWNER odoo"),
        )
    )


def restore_database_command(layout: InstanceLayout, db_name: str) -> str:
    """pg_restore of the custom-format dump on standard input (read in order, no seeking)."""
    return cmd(
        "docker", "exec", "-i", layout.db_container, "pg_restore", "-U", "odoo",
        "--no-owner", "--role=odoo", "--exit-on-error", "-d", db_name,
    )  # fmt: skip


def database_answers_command(layout: InstanceLayout, db_name: str) -> str:
    """The number of tables the restored database holds (it answers, and is not empty)."""
    query = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
    return cmd(*_psql(layout, db_name), "-tAc", query)


# What Odoo's own neutralization does first (odoo/modules/neutralize.py and the
# data/neutralize.sql of base, mail and fetchmail): no mail leaves or is fetched, no scheduled
# action runs, and the copy says it is one. A table a version or a module lacks is skipped.
NEUTRALIZE_SQL: Final = """
DO $$
BEGIN
    IF to_regclass('ir_cron') IS NOT NULL THEN UPDATE ir_cron SET active = false; END IF;
    IF to_regclass('ir_mail_server') IS NOT NULL THEN
        UPDATE ir_mail_server SET active = false;
    END IF;
    IF to_regclass('fetchmail_server') IS NOT NULL THEN
        UPDATE fetchmail_server SET active = false;
    END IF;
    UPDATE ir_config_parameter SET value = 'true' WHERE key = 'database.is_neutralized';
    IF NOT FOUND THEN
        INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', 'true');
    END IF;
END $$;
"""


def neutralize_command(layout: InstanceLayout, db_name: str) -> str:
    return cmd(*_psql(layout, db_name), "-v", "ON_ERROR_STOP=1", "-c", NEUTRALIZE_SQL)


# The MCP API user's keys in a database restored from another instance are that instance's:
# deleted, so its key does not open the copy (Odoo keeps only their hashes: nothing to keep).
REVOKE_API_USER_KEYS_SQL: Final = f"""
DO $$
BEGIN
    IF to_regclass('res_users_apikeys') IS NOT NULL THEN
        DELETE FROM res_users_apikeys
        WHERE user_id IN (SELECT id FROM res_users WHERE login = '{API_LOGIN}');
    END IF;
END $$;
"""


def revoke_api_user_keys_command(layout: InstanceLayout, db_name: str) -> str:
    return cmd(*_psql(layout, db_name), "-v", "ON_ERROR_STOP=1", "-c", REVOKE_API_USER_KEYS_SQL)
