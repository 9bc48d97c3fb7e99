"""Odoo search domains (prefix `&`/`|`/`!` over `(field, operator, value)` leaves) as SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from psycopg2 import sql

from .errors import InvalidValue

_COMPARISONS = {"=", "!=", "<>", "<", ">", "<=", ">="}
_PATTERNS = {
    "like": ("LIKE", True),
    "ilike": ("ILIKE", True),
    "not like": ("NOT LIKE", True),
    "not ilike": ("NOT ILIKE", True),
    "=like": ("LIKE", False),
    "=ilike": ("ILIKE", False),
}


def _leaf(columns: Collection[str], leaf: Sequence[object]) -> tuple[sql.Composable, list[object]]:
    if len(leaf) != 3 or not isinstance(leaf[0], str) or not isinstance(leaf[1], str):
        raise InvalidValue(f"Invalid leaf {list(leaf)!r}")
    name, operator, value = leaf[0], leaf[1].lower(), leaf[2]
    if name not in columns:
        raise InvalidValue(f"Invalid field {name!r} in leaf {list(leaf)!r}")
    column = sql.Identifier(name)
    if operator in ("in", "not in"):
        if not isinstance(value, list | tuple):
            raise InvalidValue(f"Invalid value for operator {operator!r}: {value!r}")
        if not value:
            return sql.SQL("FALSE" if operator == "in" else "TRUE"), []
        keyword = sql.SQL("IN" if operator == "in" else "NOT IN")
        return sql.SQL("{} {} %s").format(column, keyword), [tuple(value)]
    if operator in _COMPARISONS:
        if value is False or value is None:
            test = "IS NULL" if operator == "=" else "IS NOT NULL"
            return sql.SQL("{} " + test).format(column), []
        symbol = "<>" if operator == "!=" else operator
        return sql.SQL("{} " + symbol + " %s").format(column), [value]
    if operator in _PATTERNS:
        keyword, wrap = _PATTERNS[operator]
        pattern = f"%{value}%" if wrap else value
        return sql.SQL("{}::text " + keyword + " %s").format(column), [pattern]
    raise InvalidValue(f"Invalid operator {leaf[1]!r}")


def to_sql(
    columns: Collection[str], domain: Sequence[object]
) -> tuple[sql.Composable, list[object]]:
    """Prefix notation with an implicit `&` between consecutive terms, like Odoo."""
    if not isinstance(domain, list | tuple):
        raise InvalidValue(f"Invalid domain {domain!r}")
    items = list(domain)
    position = 0

    def term() -> tuple[sql.Composable, list[object]]:
        nonlocal position
        if position >= len(items):
            raise InvalidValue(f"Invalid domain {domain!r}")
        item = items[position]
        position += 1
        if item in ("&", "|"):
            left, left_params = term()
            right, right_params = term()
            joiner = " AND " if item == "&" else " OR "
            return sql.SQL("({}" + joiner + "{})").format(left, right), left_params + right_params
        if item == "!":
            inner, params = term()
            return sql.SQL("(NOT {})").format(inner), params
        if not isinstance(item, list | tuple):
            raise InvalidValue(f"Invalid leaf {item!r}")
        return _leaf(columns, item)

    clauses: list[sql.Composable] = []
    params: list[object] = []
    while position < len(items):
        clause, clause_params = term()
        clauses.append(clause)
        params.extend(clause_params)
    if not clauses:
        return sql.SQL("TRUE"), []
    return sql.SQL(" AND ").join(clauses), params


def mentions(domain: Sequence[object], name: str) -> bool:
    return any(isinstance(item, list | tuple) and item and item[0] == name for item in domain)
