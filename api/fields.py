"""Validated field types of request bodies: lengths and patterns that keep every value safe to
write into files on a server (shell quoting is the workers' job; control characters are
refused here)."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

_PRINTABLE: Final = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$", description="Display name"
    ),
]
Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$",
        description="Unique in the organization; generated from the name when absent",
    ),
]
Reference = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]
Branch = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=200,
        # A git ref name: no leading dash (never an option), no `..`, plain characters.
        pattern=r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+$",
        description="Git branch",
    ),
]
AddonsPath = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=1000,
        pattern=r"^(?!.*\.\.)/[A-Za-z0-9_./-]*(,/[A-Za-z0-9_./-]*)*$",
        description="Comma-separated absolute directories inside the container",
    ),
]
EnvKey = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Z_][A-Z0-9_]*$")]
# Names the Odoo container's environment already has a meaning for: the app compose file sets
# HOST, PORT, USER and PASSWORD_FILE over instance.env (workers/server/render.py), the Odoo image's
# entrypoint replaces PASSWORD with the content of PASSWORD_FILE, and ODOO_RC would point Odoo
# away from the odoo.conf odoofleet writes (its limits, dbfilter and admin password). Accepting
# them would store a value that is silently ignored, or that disables odoofleet's settings.
RESERVED_ENV_VARS: Final = ("HOST", "PORT", "USER", "PASSWORD", "PASSWORD_FILE", "ODOO_RC")
# Whole families read ahead of odoo.conf: Odoo 19 takes any option from `ODOO_<OPTION>`
# (ODOO_LIST_DB=True with ODOO_DBFILTER=.* exposed the database list), and libpq reads `PG*`
# (the image's entrypoint also skips --db_host when PGHOST is set: PGHOST=nowhere.invalid
# crash-looped the new colour).
RESERVED_ENV_PREFIXES: Final = ("ODOO_", "PG")
# One line each: values are written to an env file, where a newline would start a new entry.
EnvValue = Annotated[str, msgspec.Meta(max_length=32_768, pattern=r"^[^\x00-\x08\x0a-\x1f\x7f]*$")]
EnvVars = Annotated[
    dict[EnvKey, EnvValue],
    msgspec.Meta(
        max_length=200,
        description="Up to 200 variables; names match ^[A-Z_][A-Z0-9_]*$, values are one line"
        " of at most 32 KiB. Names odoofleet sets itself are refused: "
        + ", ".join(RESERVED_ENV_VARS)
        + "; so are names starting with "
        + " or ".join(RESERVED_ENV_PREFIXES)
        + " (Odoo and libpq read those ahead of odoo.conf)",
    ),
]

Host = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=253,
        # A DNS name, an IPv4 address or an IPv6 address (checked again with ipaddress).
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
        r"[A-Za-z0-9])?)*|[0-9A-Fa-f:.]+)$",
    ),
]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
SshUser = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")]
PrivateKey = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=16_384, pattern=r"^-----BEGIN [A-Z0-9 ]+-----[^\x00]+$"),
]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=_PRINTABLE)]
HostKey = Annotated[
    str,
    msgspec.Meta(
        max_length=16_384,
        pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
        r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\x00-\x1f\x7f]*)?$",
        description="An OpenSSH public-key line to pin (`ssh-ed25519 AAAA…`)",
    ),
]
SshSessions = Annotated[int, msgspec.Meta(ge=1, le=64)]
