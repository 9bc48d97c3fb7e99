"""Compose YAML out of plain data, with every scalar written as a JSON string or number.

JSON is valid YAML, so a JSON-quoted scalar needs no YAML escaping rules of our own: quotes,
`#`, `:`, newlines and unicode all stay literal data. Compose still interpolates `$` inside
strings, so every `$` is doubled unless the value is marked `Interpolated`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class Interpolated(str):
    """A string whose `${VAR}` references compose must resolve (e.g. `${COLOR}`)."""


Yaml = str | int | bool | Mapping[str, "Yaml"] | Sequence["Yaml"] | None


def dump(document: Mapping[str, Yaml]) -> str:
    return "\n".join(_mapping(document, 0)) + "\n"


def _scalar(value: Yaml) -> str:
    if isinstance(value, Interpolated):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, str):
        return json.dumps(value.replace("$", "$$"), ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    return json.dumps(value)


def _key(key: str) -> str:
    # Compose interpolates values only, so a key's `$` stays single.
    return key if _PLAIN_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _mapping(document: Mapping[str, Yaml], depth: int) -> list[str]:
    lines: list[str] = []
    pad = "  " * depth
    for key, value in document.items():
        if isinstance(value, Mapping) and value:
            lines.append(f"{pad}{_key(key)}:")
            lines.extend(_mapping(value, depth + 1))
        else:
            lines.append(f"{pad}{_key(key)}: {_scalar(value)}")
    return lines
