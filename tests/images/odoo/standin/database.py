"""PostgreSQL: connections with the options' settings (libpq's PG* fill what is unset), creating
and initializing a database like `odoo -d DB -i base` does, and the filestore under data_dir."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
import uuid

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from . import log, passwords
from .options import Options

_logger = log.logger("odoo.service.db")
_loading = log.logger("odoo.modules.loading")
# Odoo's own rule for database names (odoo/service/db.py).
DB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class DatabaseExists(Exception):
    pass


def connection_params(options: Options) -> dict[str, str]:
    """Only the settings Odoo has a value for: libpq takes the rest from PG* (how an `exec "$@"`
    start without --db_password still connects, with PGPASSWORD in the environment)."""
    params = {
        name: options.get(f"db_{name}")
        for name in ("host", "port", "user", "password", "sslmode")
        if options.get(f"db_{name}") not in ("", "False")
    }
    params["application_name"] = f"odoo-{os.getpid()}"
    return params


def connect(options: Options, dbname: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(dbname=dbname, connect_timeout=5, **connection_params(options))


def server_answers(options: Options) -> bool:
    """What `/web/health?db_server_status=1` checks: a cursor on the maintenance database."""
    try:
        connect(options, "postgres").close()
    except psycopg2.Error:
        return False
    return True


def list_databases(options: Options) -> list[str]:
    """Databases owned by the connecting role, like odoo.service.db.list_dbs."""
    conn = connect(options, "postgres")
    try:
        with conn.cursor() as cr:
            cr.execute(
                "SELECT datname FROM pg_database WHERE datdba = "
                "(SELECT oid FROM pg_roles WHERE rolname = current_user) "
                "AND NOT datistemplate AND datallowconn AND datname <> 'postgres' "
                "ORDER BY datname"
            )
            return [row[0] for row in cr.fetchall()]
    finally:
        conn.close()


def exists(options: Options, db: str) -> bool:
    conn = connect(options, "postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
            return cr.fetchone() is not None
    finally:
        conn.close()


def create_empty(options: Options, db: str) -> None:
    if not DB_NAME.match(db):
        raise ValueError(f"Invalid database name: {db!r}")
    conn = connect(options, "postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
            if cr.fetchone():
                raise DatabaseExists(db)
            template = options.get("db_template") or "template0"
            try:
                cr.execute(
                    sql.SQL("CREATE DATABASE {} ENCODING 'unicode' TEMPLATE {}").format(
                        sql.Identifier(db), sql.Identifier(template)
                    )
                )
            except psycopg2.errors.DuplicateDatabase as exc:
                # Another container (the other colour) created it in the meantime.
                raise DatabaseExists(db) from exc
    finally:
        conn.close()
    _logger.info("Create database `%s`.", db, extra=log.db_extra(db))


def filestore(options: Options, db: str) -> str:
    return os.path.join(options.get("data_dir"), "filestore", db)


# The models base installs here (ir.model), as (technical name, description).
_MODELS = [
    ("ir.attachment", "Attachment"),
    ("ir.model", "Models"),
    ("res.partner", "Contact"),
    ("res.users", "User"),
    ("res.users.apikeys", "Users API Keys"),
]

_SCHEMA = """
CREATE TABLE ir_module_module (
    id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, state varchar NOT NULL,
    latest_version varchar
);
CREATE TABLE ir_config_parameter (
    id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL
);
CREATE TABLE ir_model_data (
    id serial PRIMARY KEY, module varchar NOT NULL, name varchar NOT NULL,
    model varchar NOT NULL, res_id integer, noupdate boolean DEFAULT true,
    UNIQUE (module, name)
);
CREATE TABLE res_partner (
    id serial PRIMARY KEY, name varchar, email varchar, phone varchar, street varchar,
    city varchar, zip varchar, website varchar, comment text,
    is_company boolean DEFAULT false, active boolean DEFAULT true,
    create_date timestamp DEFAULT (now() at time zone 'UTC'),
    write_date timestamp DEFAULT (now() at time zone 'UTC')
);
CREATE TABLE res_users (
    id serial PRIMARY KEY, login varchar NOT NULL UNIQUE, password varchar,
    partner_id integer NOT NULL REFERENCES res_partner(id), active boolean DEFAULT true,
    create_date timestamp DEFAULT (now() at time zone 'UTC'),
    write_date timestamp DEFAULT (now() at time zone 'UTC')
);
CREATE TABLE res_users_apikeys (
    id serial PRIMARY KEY, name varchar NOT NULL, user_id integer NOT NULL REFERENCES res_users(id)
    ON DELETE CASCADE, scope varchar, "index" varchar(8) NOT NULL, key varchar NOT NULL,
    create_date timestamp DEFAULT (now() at time zone 'UTC')
);
CREATE TABLE ir_model (
    id serial PRIMARY KEY, model varchar NOT NULL UNIQUE, name varchar NOT NULL,
    create_date timestamp DEFAULT (now() at time zone 'UTC'),
    write_date timestamp DEFAULT (now() at time zone 'UTC')
);
CREATE TABLE ir_attachment (
    id serial PRIMARY KEY, name varchar NOT NULL, res_model varchar, res_id integer,
    mimetype varchar, file_size integer, checksum varchar(40), store_fname varchar,
    create_date timestamp DEFAULT (now() at time zone 'UTC'),
    write_date timestamp DEFAULT (now() at time zone 'UTC')
);
"""


def is_initialized(conn: psycopg2.extensions.connection) -> bool:
    with conn.cursor() as cr:
        cr.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
        row = cr.fetchone()
        if not row or not row[0]:
            return False
        cr.execute("SELECT 1 FROM ir_module_module WHERE name = 'base' AND state = 'installed'")
        return cr.fetchone() is not None


def _insert_record(
    cr: psycopg2.extensions.cursor, xmlid: str, model: str, query: str, params: tuple[object, ...]
) -> int:
    cr.execute(query + " RETURNING id", params)
    row = cr.fetchone()
    assert row is not None
    module, name = xmlid.split(".")
    cr.execute(
        "INSERT INTO ir_model_data (module, name, model, res_id) VALUES (%s, %s, %s, %s)",
        (module, name, model, row[0]),
    )
    return int(row[0])


def initialize(options: Options, db: str) -> None:
    """Install `base`: the tables this stand-in serves and the records Odoo creates, with the
    admin user's login and password both `admin`, like a real `-i base`."""
    started = time.monotonic()
    _loading.info("init db", extra=log.db_extra(db))
    conn = connect(options, db)
    try:
        with conn, conn.cursor() as cr:
            # Two containers starting on a new database at once: one installs, one waits.
            cr.execute("SELECT pg_advisory_xact_lock(8069)")
            if is_initialized(conn):
                return
            cr.execute(_SCHEMA)
            partner = "INSERT INTO res_partner (name, is_company, email) VALUES (%s, %s, %s)"
            _insert_record(
                cr, "base.main_partner", "res.partner", partner, ("My Company", True, None)
            )
            root = _insert_record(
                cr, "base.partner_root", "res.partner", partner, ("OdooBot", False, None)
            )
            admin = _insert_record(
                cr,
                "base.partner_admin",
                "res.partner",
                partner,
                ("Administrator", False, "admin@example.com"),
            )
            user = (
                "INSERT INTO res_users (id, login, password, partner_id, active) "
                "VALUES (%s, %s, %s, %s, %s)"
            )
            _insert_record(
                cr, "base.user_root", "res.users", user, (1, "__system__", None, root, False)
            )
            _insert_record(
                cr,
                "base.user_admin",
                "res.users",
                user,
                (2, "admin", passwords.hash_password("admin"), admin, True),
            )
            cr.execute("SELECT setval('res_users_id_seq', 2)")
            cr.executemany("INSERT INTO ir_model (model, name) VALUES (%s, %s)", _MODELS)
            version = f"{options.version}.1.3"
            cr.execute(
                "INSERT INTO ir_module_module (name, state, latest_version) VALUES "
                "('base', 'installed', %s), ('web', 'installed', %s)",
                (version, version),
            )
            parameters = {
                "database.uuid": str(uuid.uuid1()),
                "database.secret": secrets.token_hex(32),
                "database.create_date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "web.base.url": f"http://localhost:{options.get('http_port')}",
            }
            for key, value in parameters.items():
                cr.execute(
                    "INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)", (key, value)
                )
    finally:
        conn.close()
    os.makedirs(filestore(options, db), exist_ok=True)
    _loading.info("loading 2 modules...", extra=log.db_extra(db))
    _loading.info(
        "2 modules loaded in %.2fs, 0 queries", time.monotonic() - started, extra=log.db_extra(db)
    )
    _loading.info("Modules loaded.", extra=log.db_extra(db))


def ensure(options: Options, db: str) -> None:
    """What the real server does for each name in db_name at startup: create the database when
    it is missing, install base when it is not installed."""
    with contextlib.suppress(DatabaseExists):
        create_empty(options, db)
    conn = connect(options, db)
    try:
        ready = is_initialized(conn)
    finally:
        conn.close()
    if not ready:
        initialize(options, db)
    os.makedirs(filestore(options, db), exist_ok=True)
