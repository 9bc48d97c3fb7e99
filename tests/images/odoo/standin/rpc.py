"""JSON-RPC services as Odoo serves them on /jsonrpc (common, db, object) and the web client's
/web/session/authenticate and /web/database/list, errors shaped like Odoo's."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import traceback
from collections.abc import Iterator
from typing import Any

import psycopg2

from . import database, log
from .errors import AccessDenied, AccessError, InvalidValue, OdooError, UnknownMethod
from .models import Environment, Recordset, check_credentials, check_uid
from .options import Options, dbfilter_allows

_logger = log.logger("odoo.http")
_ORM_METHODS = {
    "browse",
    "search",
    "search_count",
    "search_read",
    "read",
    "create",
    "write",
    "unlink",
    "fields_get",
    "exists",
    "name_get",
    "check_access_rights",
}


def version_info(options: Options) -> dict[str, Any]:
    major, minor = (int(part) for part in options.version.split("."))
    return {
        "server_version": options.version,
        "server_version_info": [major, minor, 0, "final", 0, ""],
        "server_serie": options.version,
        "protocol_version": 1,
    }


@contextlib.contextmanager
def environment(options: Options, db: str, uid: int) -> Iterator[Environment]:
    """One transaction: committed when the call returns, rolled back when it raises."""
    if not isinstance(db, str) or not database.DB_NAME.match(db):
        raise AccessError("Database not found.")
    try:
        conn = database.connect(options, db)
    except psycopg2.OperationalError as exc:
        if f'database "{db}" does not exist' in str(exc):
            raise AccessError("Database not found.") from exc
        raise
    try:
        with conn, conn.cursor() as cr:
            yield Environment(cr, uid, database.filestore(options, db))
    finally:
        conn.close()


def error_response(request_id: object, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, OdooError):
        name, message = exc.qualified_name, exc.message
    else:
        name, message = f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc)
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": 200,
            "message": "Odoo Server Error",
            "data": {
                "name": name,
                "debug": "".join(traceback.format_exception(exc)),
                "message": message,
                "arguments": [message],
                "context": {},
            },
        },
    }


class Dispatcher:
    """The routes that speak JSON-RPC; `host` is the request's Host header (for dbfilter)."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def allowed_databases(self, host: str) -> list[str]:
        return [
            db
            for db in database.list_databases(self.options)
            if dbfilter_allows(self.options, db, host)
        ]

    def jsonrpc(self, params: dict[str, Any]) -> Any:
        service, method, args = params.get("service"), params.get("method"), params.get("args", [])
        if not isinstance(args, list):
            raise InvalidValue("args must be a list")
        if service == "common":
            return self._common(str(method), args)
        if service == "db":
            return self._db(str(method), args)
        if service == "object":
            return self._object(str(method), args)
        raise InvalidValue(f"Unknown service {service!r}")

    def _common(self, method: str, args: list[Any]) -> Any:
        if method == "version":
            return version_info(self.options)
        if method in ("login", "authenticate"):
            if len(args) < 3:
                raise InvalidValue(f"{method}() takes db, login and password")
            db, login, password = args[0], args[1], args[2]
            with environment(self.options, db, 1) as env:
                uid = check_credentials(env, str(login), str(password))
            if uid is None:
                _logger.info("Login failed for db:%s login:%s", db, login, extra=log.db_extra(db))
                return False
            _logger.info("Login successful for db:%s login:%s", db, login, extra=log.db_extra(db))
            return uid
        raise UnknownMethod(f"'{method}' is not a method of the common service")

    def _db(self, method: str, args: list[Any]) -> Any:
        if method == "list":
            return self.list_databases("")
        if method == "server_version":
            return self.options.version
        raise AccessDenied()

    def list_databases(self, host: str) -> list[str]:
        if not self.options.flag("list_db"):
            raise AccessDenied()
        return self.allowed_databases(host)

    def _object(self, method: str, args: list[Any]) -> Any:
        if method not in ("execute_kw", "execute"):
            raise UnknownMethod(f"'{method}' is not a method of the object service")
        if len(args) < 5:
            raise InvalidValue(f"{method}() takes db, uid, password, model, method")
        db, uid, password, model, name = args[:5]
        if method == "execute_kw":
            positional = args[5] if len(args) > 5 else []
            keywords = args[6] if len(args) > 6 else {}
        else:
            positional, keywords = args[5:], {}
        if not isinstance(positional, list) or not isinstance(keywords, dict):
            raise InvalidValue("execute_kw takes a list of arguments and a dict of keywords")
        keywords.pop("context", None)
        with environment(self.options, db, uid if isinstance(uid, int) else 0) as env:
            if not check_uid(env, uid, str(password)):
                raise AccessDenied()
            return call_model(env, str(model), str(name), positional, keywords)

    def authenticate(self, params: dict[str, Any], host: str) -> tuple[dict[str, Any], str]:
        """/web/session/authenticate: the session info and a new session id."""
        db, login, password = params.get("db"), params.get("login"), params.get("password")
        if not isinstance(db, str) or not dbfilter_allows(self.options, db, host):
            raise AccessError("Database not found.")
        with environment(self.options, db, 1) as env:
            uid = check_credentials(env, str(login), str(password))
            if uid is None:
                _logger.info("Login failed for db:%s login:%s", db, login, extra=log.db_extra(db))
                raise AccessDenied()
            user = env["res.users"].browse(uid).read(["name", "login", "partner_id"])[0]
        _logger.info("Login successful for db:%s login:%s", db, login, extra=log.db_extra(db))
        session_id = self._save_session(db, uid, str(login))
        info = {
            "uid": uid,
            "is_system": uid in (1, 2),
            "is_admin": uid in (1, 2),
            "db": db,
            "name": user["name"],
            "username": user["login"],
            "partner_id": user["partner_id"][0] if user["partner_id"] else False,
            "user_context": {"lang": "en_US", "tz": "Europe/Brussels", "uid": uid},
            **version_info(self.options),
        }
        return info, session_id

    def _save_session(self, db: str, uid: int, login: str) -> str:
        """Odoo keeps sessions as files under <data_dir>/sessions."""
        session_id = secrets.token_urlsafe(30)
        directory = os.path.join(self.options.get("data_dir"), "sessions", session_id[:2])
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, session_id), "w", encoding="utf-8") as session:
            json.dump({"db": db, "uid": uid, "login": login}, session)
        return session_id


def call_model(
    env: Environment, model: str, method: str, args: list[Any], kwargs: dict[str, Any]
) -> Any:
    records = env[model]
    if method not in _ORM_METHODS:
        raise UnknownMethod(f"The method '{method}' does not exist on the model '{model}'")
    if method not in ("create", "search", "search_read", "search_count", "fields_get", "browse"):
        ids = args[0] if args else kwargs.pop("ids", [])
        records = records.browse(ids)
        args = args[1:]
    try:
        result = getattr(records, method)(*args, **kwargs)
    except TypeError as exc:
        raise InvalidValue(str(exc)) from exc
    if method == "create" and isinstance(result, Recordset):
        # create(dict) answers an id, create([dict, ...]) a list of ids.
        return result.ids if args and isinstance(args[0], list) else result.id
    if isinstance(result, Recordset):
        return result.ids
    return result
