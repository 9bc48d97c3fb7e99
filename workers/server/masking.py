"""Masking the known secret values of an instance and its server out of recorded outputs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from events.secrets import MASK

# Shorter values are not masked: replacing every "1" or "on" would erase exit statuses and
# numbers from every excerpt while hiding nothing a guess could not find.
MIN_SECRET_LENGTH: Final = 3
# Each line of a multi-line secret (a private key) is masked on its own too, so a command
# that printed part of it gives nothing away.
_MIN_LINE_LENGTH: Final = 16


class Masker:
    """Replaces every occurrence of each secret with MASK, longest first (so a secret that
    contains another is masked whole)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        values: set[str] = set()
        for secret in secrets:
            if not secret or secret == MASK:
                continue
            values.add(secret)
            lines = (line.strip() for line in secret.splitlines())
            values.update(line for line in lines if len(line) >= _MIN_LINE_LENGTH)
        kept = (value for value in values if len(value) >= MIN_SECRET_LENGTH)
        self._values = sorted(kept, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text
