"""The dedicated Odoo user MCP calls as, and its API key (Odoo 14+ `res.users.apikeys`),
created or renewed by a script for `odoo shell` read on its standard input: the key is printed
once, on a marked line, and never written to the server's disk."""

from __future__ import annotations

import json
import re
from typing import Final

import msgspec

from workers.server.fields import check_db_name
from workers.server.layout import InstanceLayout
from workers.server.render import odoo_command
from workers.server.shell import cmd, locked, sequence

API_LOGIN: Final = "odoofleet-mcp"
KEY_NAME: Final = "odoofleet MCP"
MARKER: Final = "ODOOFLEET_MCP_KEY "
_KEY: Final = re.compile(r"[0-9a-f]{16,128}")


class ApiCredentials(msgspec.Struct, frozen=True):
    login: str
    uid: int
    key: str

    def __repr__(self) -> str:
        return f"ApiCredentials({self.login}, uid={self.uid}, key=…)"


class ApiUserOutputError(ValueError):
    """The script's output has no usable key line."""


def api_user_script(*, valid_days: int = 400) -> str:
    """Creates the user if missing, revokes its earlier keys (a rotation), generates one key
    of scope `rpc`. Odoo 17 added a required expiry to `_generate`; earlier versions have
    none, so the script asks the method which it is."""
    return f"""\
import datetime, inspect, json
users = env['res.users']
user = users.search([('login', '=', {API_LOGIN!r})])
if not user:
    user = users.create({{'login': {API_LOGIN!r}, 'name': 'odoofleet MCP'}})
keys = env['res.users.apikeys']
keys.search([('user_id', '=', user.id)]).unlink()
generate = keys.with_user(user)._generate
extra = []
if 'expiration_date' in inspect.signature(generate).parameters:
    extra.append(datetime.datetime.now() + datetime.timedelta(days={valid_days}))
key = generate('rpc', {KEY_NAME!r}, *extra)
env.cr.commit()
print({MARKER!r} + json.dumps({{'uid': user.id, 'key': key}}))
"""


def parse_api_user_output(stdout: str) -> ApiCredentials:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            try:
                found = json.loads(line[len(MARKER) :])
                uid, key = int(found["uid"]), str(found["key"])
            except (ValueError, KeyError, TypeError) as e:
                raise ApiUserOutputError(f"a malformed key line: {e}") from None
            if not _KEY.fullmatch(key):
                raise ApiUserOutputError("the key is not an Odoo API key")
            return ApiCredentials(API_LOGIN, uid, key)
    raise ApiUserOutputError("no key line in the output of odoo shell")


def api_user_script_path(layout: InstanceLayout) -> str:
    """Where the script waits for `odoo shell`, only while the shell reads it."""
    return f"{layout.secrets_dir}/mcp_api_user.py"


def api_user_command(layout: InstanceLayout, db_name: str, running_color: str) -> str:
    """Run the uploaded script in `odoo shell` inside the running colour; the script is
    removed whatever the outcome. The key is on the standard output only."""
    shell = odoo_command("shell", "-d", check_db_name(db_name), "--no-http")
    run = ["docker", "exec", "-i", layout.app_container(running_color), *shell]
    source = api_user_script_path(layout)
    body = sequence(f"{cmd(*run)} < {cmd(source)}", "status=$?", cmd("rm", "-f", source))
    return locked(layout.lock, f'{body}; exit "$status"')
