"""Tool names: `odoofleet_<tool>` for the platform, `{normalized_slug}_{tool}` per instance."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Final

PLATFORM_PREFIX: Final = "odoofleet"
_NOT_NAME: Final = re.compile(r"[^a-z0-9_]")


def normalized(slug: str) -> str:
    """A slug as a tool-name prefix: hyphens (and anything else) → underscores."""
    return _NOT_NAME.sub("_", slug.lower())


def prefixes(instances: Iterable[tuple[str, str]]) -> dict[str, str]:
    """(instance id, slug) → the prefix of that instance's tools. A prefix that two instances
    would share, or that is the platform's, gets the first 8 characters of the id."""
    pairs = list(instances)
    counts = Counter(normalized(slug) for _, slug in pairs)
    found = {}
    for instance_id, slug in pairs:
        name = normalized(slug)
        clashes = counts[name] > 1 or name == PLATFORM_PREFIX
        found[instance_id] = f"{name}_{instance_id.replace('-', '')[:8]}" if clashes else name
    return found
