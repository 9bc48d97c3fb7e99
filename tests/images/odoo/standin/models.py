"""A few Odoo models over their real table names, as recordsets with the ORM's method names:
what execute_kw and `odoo shell` scripts call (browse, search, read, create, write, unlink)."""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from . import domains, passwords
from .errors import InvalidValue, MissingError, UnknownModel, ValidationError


@dataclass(frozen=True)
class Field:
    type: str
    string: str
    required: bool = False
    readonly: bool = False
    relation: str | None = None
    # False for fields computed in Python (not a column of the table).
    stored: bool = True


@dataclass(frozen=True)
class ModelDef:
    name: str
    table: str
    description: str
    fields: dict[str, Field]

    @property
    def columns(self) -> list[str]:
        return [name for name, field in self.fields.items() if field.stored]


_DATES = {
    "create_date": Field("datetime", "Created on", readonly=True),
    "write_date": Field("datetime", "Last Updated on", readonly=True),
}
MODELS = {
    "res.partner": ModelDef(
        "res.partner",
        "res_partner",
        "Contact",
        {
            "id": Field("integer", "ID", readonly=True),
            "name": Field("char", "Name"),
            "display_name": Field("char", "Display Name", readonly=True, stored=False),
            "email": Field("char", "Email"),
            "phone": Field("char", "Phone"),
            "street": Field("char", "Street"),
            "city": Field("char", "City"),
            "zip": Field("char", "Zip"),
            "website": Field("char", "Website Link"),
            "comment": Field("html", "Notes"),
            "is_company": Field("boolean", "Is a Company"),
            "active": Field("boolean", "Active"),
            **_DATES,
        },
    ),
    "res.users": ModelDef(
        "res.users",
        "res_users",
        "User",
        {
            "id": Field("integer", "ID", readonly=True),
            "login": Field("char", "Login", required=True),
            "password": Field("char", "Password"),
            "name": Field("char", "Name", stored=False),
            "display_name": Field("char", "Display Name", readonly=True, stored=False),
            "partner_id": Field("many2one", "Related Partner", relation="res.partner"),
            "active": Field("boolean", "Active"),
            **_DATES,
        },
    ),
    # Odoo 14+ API keys: readable as records, the key itself only ever as a hash.
    "res.users.apikeys": ModelDef(
        "res.users.apikeys",
        "res_users_apikeys",
        "Users API Keys",
        {
            "id": Field("integer", "ID", readonly=True),
            "name": Field("char", "Description", required=True),
            "user_id": Field("many2one", "User", relation="res.users"),
            "scope": Field("char", "Scope"),
            "create_date": Field("datetime", "Creation Date", readonly=True),
        },
    ),
    "ir.model": ModelDef(
        "ir.model",
        "ir_model",
        "Models",
        {
            "id": Field("integer", "ID", readonly=True),
            "model": Field("char", "Model", required=True),
            "name": Field("char", "Model Description", required=True),
            "display_name": Field("char", "Display Name", readonly=True, stored=False),
            **_DATES,
        },
    ),
    "ir.attachment": ModelDef(
        "ir.attachment",
        "ir_attachment",
        "Attachment",
        {
            "id": Field("integer", "ID", readonly=True),
            "name": Field("char", "Name", required=True),
            "datas": Field("binary", "File Content (base64)", stored=False),
            "res_model": Field("char", "Resource Model"),
            "res_id": Field("many2one_reference", "Resource ID"),
            "mimetype": Field("char", "Mime Type"),
            "file_size": Field("integer", "File Size", readonly=True),
            "checksum": Field("char", "Checksum/SHA1", readonly=True),
            "store_fname": Field("char", "Stored Filename", readonly=True),
            **_DATES,
        },
    ),
}


class Environment:
    """`env` of an Odoo shell or of one RPC call: a cursor, a user, the models."""

    def __init__(self, cr: psycopg2.extensions.cursor, uid: int, filestore: str) -> None:
        self.cr = Cursor(cr)
        self.uid = uid
        self.filestore = filestore

    def __getitem__(self, model: str) -> Recordset:
        if model not in MODELS:
            raise UnknownModel(repr(model))
        return Recordset(self, MODELS[model], ())

    def __contains__(self, model: str) -> bool:
        return model in MODELS

    @property
    def user(self) -> Recordset:
        return self["res.users"].browse(self.uid)

    def ref(self, xmlid: str, raise_if_not_found: bool = True) -> Recordset | None:
        module, _, name = xmlid.partition(".")
        self.cr.execute(
            "SELECT model, res_id FROM ir_model_data WHERE module = %s AND name = %s",
            (module, name),
        )
        row = self.cr.fetchone()
        if row is None:
            if raise_if_not_found:
                raise ValueError(f"External ID not found in the system: {xmlid}")
            return None
        return self[row[0]].browse(row[1])


class Cursor:
    """env.cr: the psycopg2 cursor plus Odoo's commit/rollback/dictfetchall."""

    def __init__(self, cr: psycopg2.extensions.cursor) -> None:
        self._cr = cr

    def execute(self, query: Any, params: Any = None) -> None:
        self._cr.execute(query, params)

    def fetchone(self) -> Any:
        return self._cr.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cr.fetchall()

    def dictfetchall(self) -> list[dict[str, Any]]:
        names = [column.name for column in self._cr.description or ()]
        return [dict(zip(names, row, strict=True)) for row in self._cr.fetchall()]

    def commit(self) -> None:
        self._cr.connection.commit()

    def rollback(self) -> None:
        self._cr.connection.rollback()

    @property
    def dbname(self) -> str:
        return str(self._cr.connection.info.dbname)


def _as_ids(ids: object) -> tuple[int, ...]:
    if isinstance(ids, bool):
        raise InvalidValue(f"Invalid ids {ids!r}")
    if isinstance(ids, int):
        return (ids,)
    if isinstance(ids, list | tuple) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        return tuple(ids)
    raise InvalidValue(f"Invalid ids {ids!r}")


class Recordset:
    def __init__(self, env: Environment, model: ModelDef, ids: tuple[int, ...]) -> None:
        self.env = env
        self._model = model
        self.ids = list(ids)

    # --- recordset protocol -------------------------------------------------------------
    def __repr__(self) -> str:
        return f"{self._model.name}{tuple(self.ids)!r}"

    def __len__(self) -> int:
        return len(self.ids)

    def __bool__(self) -> bool:
        return bool(self.ids)

    def __iter__(self) -> Iterator[Recordset]:
        return (self.browse(i) for i in self.ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recordset) and (self._model.name, self.ids) == (
            other._model.name,
            other.ids,
        )

    def __hash__(self) -> int:
        return hash((self._model.name, tuple(self.ids)))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._model.fields:
            raise AttributeError(f"{self._model.name!r} object has no attribute {name!r}")
        if not self.ids:
            return False
        self.ensure_one()
        value = self.read([name])[0][name]
        field = self._model.fields[name]
        if field.type == "many2one":
            return self.env[field.relation or ""].browse(value[0] if value else [])
        return value

    @property
    def id(self) -> int | bool:
        return self.ids[0] if len(self.ids) == 1 else False

    @property
    def _name(self) -> str:
        return self._model.name

    def with_user(self, user: object) -> Recordset:
        """The same records, acting as `user` (a res.users record or id)."""
        env = copy.copy(self.env)
        env.uid = user.id if isinstance(user, Recordset) else int(user)  # type: ignore[arg-type]
        return Recordset(env, self._model, tuple(self.ids))

    def _generate(self, scope: str | None, name: str, expiration_date: object = None) -> str:
        """res.users.apikeys._generate: a new API key of the acting user, returned once and
        stored as a hash under its first 8 characters (Odoo 14+; 17.0 added the expiry)."""
        if self._model.name != "res.users.apikeys":
            raise AttributeError(f"{self._model.name!r} object has no attribute '_generate'")
        key = secrets.token_hex(20)
        self.env.cr.execute(
            'INSERT INTO res_users_apikeys (name, user_id, scope, "index", key)'
            " VALUES (%s, %s, %s, %s, %s)",
            (name, self.env.uid, scope, key[:8], passwords.hash_password(key)),
        )
        return key

    def ensure_one(self) -> Recordset:
        if len(self.ids) != 1:
            raise ValueError(f"Expected singleton: {self!r}")
        return self

    def browse(self, ids: object = ()) -> Recordset:
        return Recordset(self.env, self._model, _as_ids(ids))

    def exists(self) -> Recordset:
        if not self.ids:
            return self
        query = sql.SQL("SELECT id FROM {} WHERE id IN %s").format(
            sql.Identifier(self._model.table)
        )
        self.env.cr.execute(query, (tuple(self.ids),))
        found = {row[0] for row in self.env.cr.fetchall()}
        return self.browse([i for i in self.ids if i in found])

    # --- ORM methods ------------------------------------------------------------------
    def search(
        self,
        domain: Sequence[object] = (),
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
        count: bool = False,
    ) -> Any:
        where, params = domains.to_sql(self._model.columns, domain)
        if "active" in self._model.fields and not domains.mentions(domain, "active"):
            where = sql.SQL("({}) AND active").format(where)
        table = sql.Identifier(self._model.table)
        if count:
            self.env.cr.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table, where), params
            )
            row = self.env.cr.fetchone()
            return int(row[0]) if row else 0
        query = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY {}").format(
            table, where, self._order(order)
        )
        if limit:
            query = sql.SQL("{} LIMIT {}").format(query, sql.Literal(int(limit)))
        if offset:
            query = sql.SQL("{} OFFSET {}").format(query, sql.Literal(int(offset)))
        self.env.cr.execute(query, params)
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    def search_count(self, domain: Sequence[object] = (), limit: int | None = None) -> int:
        return int(self.search(domain, count=True))

    def search_read(
        self,
        domain: Sequence[object] = (),
        fields: Sequence[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[dict[str, Any]]:
        return self.search(domain or (), offset=offset, limit=limit, order=order).read(fields)

    def read(
        self, fields: Sequence[str] | None = None, load: str = "_classic_read"
    ) -> list[dict[str, Any]]:
        names = self._read_names(fields)
        if not self.ids:
            return []
        table = sql.Identifier(self._model.table)
        query = sql.SQL("SELECT * FROM {} WHERE id IN %s").format(table)
        self.env.cr.execute(query, (tuple(self.ids),))
        rows = {row["id"]: row for row in self.env.cr.dictfetchall()}
        missing = [i for i in self.ids if i not in rows]
        if missing:
            raise self._missing(missing)
        return [self._present(rows[i], names) for i in self.ids]

    def create(self, vals_list: dict[str, Any] | list[dict[str, Any]]) -> Recordset:
        single = isinstance(vals_list, dict)
        batch = [vals_list] if isinstance(vals_list, dict) else vals_list
        if not isinstance(batch, list) or not all(isinstance(vals, dict) for vals in batch):
            raise InvalidValue(f"Invalid values {vals_list!r}")
        created = [self._create_one(vals) for vals in batch]
        records = self.browse(created)
        return records if not single else records.browse(created[0])

    def write(self, vals: dict[str, Any]) -> bool:
        if not isinstance(vals, dict):
            raise InvalidValue(f"Invalid values {vals!r}")
        if not self.ids:
            return True
        present = self.exists()
        if len(present) != len(set(self.ids)):
            missing = sorted(set(self.ids) - set(present.ids))
            raise self._missing(missing)
        columns = self._columns_for(vals)
        if self._model.name == "res.users" and "name" in vals:
            for user in self:
                user.partner_id.write({"name": vals["name"]})
        self._update(self.ids, columns)
        return True

    def unlink(self) -> bool:
        if not self.ids:
            return True
        if self._model.name == "res.users" and {1, 2} & set(self.ids):
            raise ValidationError(
                "You can not remove the admin user as it is used internally for resources "
                "created by Odoo"
            )
        self.env.cr.execute(
            sql.SQL("DELETE FROM {} WHERE id IN %s").format(sql.Identifier(self._model.table)),
            (tuple(self.ids),),
        )
        return True

    def fields_get(
        self, allfields: Sequence[str] | None = None, attributes: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for name, field in self._model.fields.items():
            if allfields and name not in allfields:
                continue
            description: dict[str, Any] = {
                "type": field.type,
                "string": field.string,
                "required": field.required,
                "readonly": field.readonly,
                "store": field.stored,
                "searchable": field.stored,
                "sortable": field.stored,
                "name": name,
            }
            if field.relation:
                description["relation"] = field.relation
            if attributes:
                description = {
                    key: value for key, value in description.items() if key in attributes
                }
            result[name] = description
        return result

    def name_get(self) -> list[tuple[int, str]]:
        return [(row["id"], row["display_name"]) for row in self.read(["display_name"])]

    def check_access_rights(self, operation: str, raise_exception: bool = True) -> bool:
        return True

    # --- helpers ------------------------------------------------------------------------
    def _missing(self, ids: Sequence[int]) -> MissingError:
        record = f"{self._model.name}({', '.join(map(str, ids))},)"
        return MissingError(
            f"Record does not exist or has been deleted.\n(Record: {record}, User: {self.env.uid})"
        )

    def _order(self, order: str | None) -> sql.Composable:
        if not order:
            return sql.SQL("id")
        terms: list[sql.Composable] = []
        for part in order.split(","):
            words = part.split()
            if not words or words[0] not in self._model.columns or len(words) > 2:
                raise InvalidValue(f'Invalid "order" specified ({order})')
            direction = words[1].upper() if len(words) == 2 else "ASC"
            if direction not in ("ASC", "DESC"):
                raise InvalidValue(f'Invalid "order" specified ({order})')
            terms.append(sql.SQL("{} " + direction).format(sql.Identifier(words[0])))
        return sql.SQL(", ").join(terms)

    def _read_names(self, fields: Sequence[str] | None) -> list[str]:
        if not fields:
            return (
                [name for name in self._model.fields if name != "datas"]
                if self._model.name == "ir.attachment"
                else list(self._model.fields)
            )
        names = ["id", *[name for name in fields if name != "id"]]
        unknown = [name for name in names if name not in self._model.fields]
        if unknown:
            raise InvalidValue(f"Invalid field {unknown[0]!r} on model {self._model.name!r}")
        return names

    def _present(self, row: dict[str, Any], names: list[str]) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for name in names:
            field = self._model.fields[name]
            if name == "password":
                value: Any = ""
            elif name in ("display_name", "name") and self._model.name == "res.users":
                value = self._partner_name(row["partner_id"])
            elif name == "display_name":
                value = row.get("name") or ""
            elif name == "datas":
                value = self._read_file(row.get("store_fname"))
            elif field.type == "many2one":
                value = [row[name], self._partner_name(row[name])] if row.get(name) else False
            else:
                value = row.get(name)
            if isinstance(value, datetime.datetime):
                value = value.strftime("%Y-%m-%d %H:%M:%S")
            record[name] = False if value is None and field.type != "integer" else value
        return record

    def _partner_name(self, partner_id: int | None) -> str:
        if not partner_id:
            return ""
        self.env.cr.execute("SELECT name FROM res_partner WHERE id = %s", (partner_id,))
        row = self.env.cr.fetchone()
        return str(row[0] or "") if row else ""

    def _columns_for(self, vals: dict[str, Any]) -> dict[str, Any]:
        columns: dict[str, Any] = {}
        for name, value in vals.items():
            field = self._model.fields.get(name)
            if field is None:
                raise InvalidValue(f"Invalid field {name!r} on model {self._model.name!r}")
            if name == "id" or name in _DATES or field.readonly:
                continue
            if name == "password":
                columns[name] = passwords.hash_password(str(value)) if value else None
            elif name == "datas":
                columns.update(self._store_file(value))
            elif field.stored:
                columns[name] = value if value is not False or field.type == "boolean" else None
        return columns

    def _update(self, ids: list[int], columns: dict[str, Any]) -> None:
        assignments = [sql.SQL("{} = %s").format(sql.Identifier(name)) for name in columns]
        assignments.append(sql.SQL("write_date = now() at time zone 'UTC'"))
        query = sql.SQL("UPDATE {} SET {} WHERE id IN %s").format(
            sql.Identifier(self._model.table), sql.SQL(", ").join(assignments)
        )
        self.env.cr.execute(query, [*columns.values(), tuple(ids)])

    def _create_one(self, vals: dict[str, Any]) -> int:
        values = dict(vals)
        if self._model.name == "res.users":
            if not values.get("login"):
                raise ValidationError("The field 'Login' is required.")
            if not values.get("partner_id"):
                partner = self.env["res.partner"].create(
                    {"name": values.get("name") or values["login"]}
                )
                values["partner_id"] = partner.id
            values.pop("name", None)
        if self._model.name == "ir.attachment" and not values.get("name"):
            raise ValidationError("The field 'Name' is required.")
        columns = self._columns_for(values)
        table = sql.Identifier(self._model.table)
        if columns:
            query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
                table,
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            )
        else:
            query = sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING id").format(table)
        try:
            self.env.cr.execute(query, list(columns.values()))
        except psycopg2.errors.UniqueViolation as exc:
            raise ValidationError(
                f"A record with the same value already exists: {exc.diag.message_detail}"
            ) from exc
        row = self.env.cr.fetchone()
        return int(row[0])

    def _store_file(self, datas: object) -> dict[str, Any]:
        """Like Odoo's filestore: `<data_dir>/filestore/<db>/<sha1[:2]>/<sha1>`."""
        if datas is False or datas is None:
            return {"store_fname": None, "file_size": 0, "checksum": None}
        if not isinstance(datas, str):
            raise InvalidValue("datas must be base64 text")
        raw = base64.b64decode(datas)
        checksum = hashlib.sha1(raw).hexdigest()
        fname = f"{checksum[:2]}/{checksum}"
        path = os.path.join(self.env.filestore, fname)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(raw)
        return {"store_fname": fname, "file_size": len(raw), "checksum": checksum}

    def _read_file(self, fname: str | None) -> str | bool:
        if not fname:
            return False
        with open(os.path.join(self.env.filestore, fname), "rb") as stored:
            return base64.b64encode(stored.read()).decode()


def check_credentials(env: Environment, login: str, password: str) -> int | None:
    """The uid of an active user with that login and password (or one of its RPC API keys)."""
    env.cr.execute("SELECT id, password FROM res_users WHERE login = %s AND active", (login,))
    row = env.cr.fetchone()
    if row and (passwords.verify(password, row[1]) or _api_key_matches(env, row[0], password)):
        return int(row[0])
    return None


def _api_key_matches(env: Environment, uid: int, key: str) -> bool:
    """As Odoo's _check_credentials: a key of scope `rpc` (or none) is a password for RPC."""
    env.cr.execute(
        'SELECT key FROM res_users_apikeys WHERE user_id = %s AND "index" = %s'
        " AND (scope IS NULL OR scope = 'rpc')",
        (uid, key[:8]),
    )
    return any(passwords.verify(key, stored) for (stored,) in env.cr.fetchall())


def check_uid(env: Environment, uid: object, password: str) -> bool:
    if not isinstance(uid, int) or isinstance(uid, bool):
        return False
    env.cr.execute("SELECT password FROM res_users WHERE id = %s AND active", (uid,))
    row = env.cr.fetchone()
    return bool(row) and (
        passwords.verify(password, row[0]) or _api_key_matches(env, uid, password)
    )
