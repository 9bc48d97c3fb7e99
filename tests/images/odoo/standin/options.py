"""Odoo's options: per-version known keys, odoo.conf, ODOO_* / PG* environment (19.0) and CLI."""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Keys of the [options] section each version's odoo/tools/config.py declares (optparse dests
# plus the file-only ones), written from its option list. The real server stores an unknown
# key as-is (silently up to 18.0, with a warning in 19.0) and ignores it; this stand-in refuses
# it, so a key rendered for the wrong version fails loudly in the test tier.
_COMMON = frozenset(
    """
    addons_path admin_passwd csv_internal_sep data_dir db_host db_maxconn db_name db_password
    db_port db_sslmode db_template db_user dbfilter dev_mode email_from from_filter http_enable
    http_interface http_port import_partial language limit_memory_hard limit_memory_soft
    limit_request limit_time_cpu limit_time_real limit_time_real_cron list_db load_language
    log_db log_db_level log_handler log_level logfile max_cron_threads osv_memory_count_limit
    overwrite_existing_translations pg_path pidfile proxy_mode publisher_warranty_url reportgz
    screencasts screenshots server_wide_modules shell_interface smtp_password smtp_port
    smtp_server smtp_ssl smtp_ssl_certificate smtp_ssl_private_key smtp_user syslog test_enable
    test_file test_tags transient_age_limit translate_modules unaccent upgrade_path
    without_demo workers
    """.split()  # noqa: SIM905 - a word list reads better than quoted names
)
# ≤ 16.0: the option of the evented (longpolling, then websocket) server.
_V15 = _COMMON | {"longpolling_port", "geoip_database", "root_path"}
_V16 = _V15 | {
    "websocket_keep_alive_timeout",
    "websocket_rate_limit_burst",
    "websocket_rate_limit_delay",
    "x_sendfile",
}
# 17.0 renames it gevent_port; longpolling_port stays a deprecated alias (warned, see below).
_V17 = (_V16 - {"geoip_database", "longpolling_port"}) | {
    "gevent_port",
    "geoip_city_db",
    "geoip_country_db",
    "limit_memory_soft_gevent",
    "limit_memory_hard_gevent",
    "pre_upgrade_scripts",
}
_V18 = _V17 | {"db_replica_host", "db_replica_port"}
# 19.0 drops the longpolling alias; without_demo is still read (mapped onto with_demo).
_V19 = (_V18 - {"root_path", "osv_memory_count_limit"}) | {
    "with_demo",
    "db_app_name",
    "bin_path",
    "default_productivity_apps",
    "import_file_maxbytes",
    "import_file_timeout",
    "import_url_regex",
    "proxy_access_token",
    "smtp_ssl_certificate_filename",
    "smtp_ssl_private_key_filename",
}
KNOWN_KEYS = {"15.0": _V15, "16.0": _V16, "17.0": _V17, "18.0": _V18, "19.0": _V19}
# Old names the real config loader maps silently (odoo.tools.config, outdated_options_map).
OUTDATED = {
    "xmlrpc_port": "http_port",
    "xmlrpc_interface": "http_interface",
    "xmlrpc": "http_enable",
}
DEPRECATED_ALIASES = {"17.0": {"longpolling_port": "gevent_port"}}
DEPRECATED_ALIASES["18.0"] = DEPRECATED_ALIASES["17.0"]

DEFAULTS: dict[str, str] = {
    "admin_passwd": "admin",
    "data_dir": "/var/lib/odoo",
    "db_host": "",
    "db_port": "",
    "db_user": "",
    "db_password": "",
    "db_name": "",
    "db_maxconn": "64",
    "dbfilter": "",
    "http_enable": "True",
    "http_interface": "",
    "http_port": "8069",
    "gevent_port": "8072",
    "longpolling_port": "8072",
    "list_db": "True",
    "log_level": "info",
    "proxy_mode": "False",
    "workers": "0",
    "max_cron_threads": "2",
    "without_demo": "False",
    "addons_path": "",
}

# 19.0 reads libpq's variables into the db_* options (ahead of odoo.conf).
PG_ENV = {
    "PGHOST": "db_host",
    "PGPORT": "db_port",
    "PGUSER": "db_user",
    "PGPASSWORD": "db_password",
    "PGDATABASE": "db_name",
}

# Command-line options that are not simply --<key> / --<key-with-dashes>.
_CLI_ALIASES = {
    "-d": "db_name",
    "--database": "db_name",
    "-r": "db_user",
    "-w": "db_password",
    "-c": "config",
    "--config": "config",
    "-i": "init",
    "--init": "init",
    "-u": "update",
    "--update": "update",
    "-p": "http_port",
    "-D": "data_dir",
    "--db-filter": "dbfilter",
    "--load": "server_wide_modules",
    "--smtp": "smtp_server",
    "--dev": "dev_mode",
    "--xmlrpc-port": "http_port",
    "--xmlrpc-interface": "http_interface",
}
_CLI_FLAGS = {
    "--stop-after-init": ("stop_after_init", "True"),
    "--no-http": ("http_enable", "False"),
    "--no-xmlrpc": ("http_enable", "False"),
    "--no-database-list": ("list_db", "False"),
    "--proxy-mode": ("proxy_mode", "True"),
    "--smtp-ssl": ("smtp_ssl", "True"),
    "--syslog": ("syslog", "True"),
    "--x-sendfile": ("x_sendfile", "True"),
    "--test-enable": ("test_enable", "True"),
    "--unaccent": ("unaccent", "True"),
    "-s": ("save", "True"),
    "--save": ("save", "True"),
}


class OptionError(Exception):
    """A command line or odoo.conf the real server would not start with."""


@dataclass
class Options:
    version: str
    values: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    config_file: str = ""
    # Keys set by odoo.conf, the environment or the command line (not defaults).
    explicit: set[str] = field(default_factory=set)

    def get(self, key: str) -> str:
        return self.values.get(key, DEFAULTS.get(key, ""))

    def flag(self, key: str) -> bool:
        return self.get(key).strip().lower() in ("true", "1", "yes", "on")

    def integer(self, key: str) -> int:
        return int(self.get(key) or "0")

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def evented_port(self) -> int:
        key = "gevent_port" if self.major >= 17 else "longpolling_port"
        return self.integer(key)

    def db_names(self) -> list[str]:
        return [name.strip() for name in self.get("db_name").split(",") if name.strip()]


def _cli_table(version: str) -> dict[str, str]:
    table = dict(_CLI_ALIASES)
    for key in KNOWN_KEYS[version] | set(DEPRECATED_ALIASES.get(version, {})):
        table[f"--{key}"] = key
        table["--" + key.replace("_", "-")] = key
    return table


def parse_cli(version: str, argv: list[str]) -> dict[str, str]:
    """optparse's grammar as Odoo uses it: `--opt=value`, `--opt value`, `-d value`."""
    table = _cli_table(version)
    values: dict[str, str] = {}
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        name, has_value, inline = arg.partition("=")
        if name in _CLI_FLAGS and not has_value:
            key, value = _CLI_FLAGS[name]
            values[key] = value
            continue
        if name == "--without-demo":
            # Optional value since 19.0 (bare flag means "all"); required before.
            if not has_value and version != "19.0":
                if index >= len(argv):
                    raise OptionError(f"{name} option requires 1 argument")
                inline, index = argv[index], index + 1
            values["without_demo"] = inline if has_value or version != "19.0" else "all"
            continue
        if name == "--with-demo" and version == "19.0":
            values["with_demo"] = "True"
            continue
        key = table.get(name)
        if key is None:
            raise OptionError(f"no such option: {name}")
        if not has_value:
            if index >= len(argv):
                raise OptionError(f"{name} option requires 1 argument")
            inline, index = argv[index], index + 1
        values[key] = inline
    return values


def read_conf(path: str) -> dict[str, str]:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"))
    try:
        with open(path, encoding="utf-8") as conf:
            parser.read_file(conf)
    except FileNotFoundError:
        return {}
    except configparser.Error as exc:
        raise OptionError(f"malformed configuration file {path!r}: {exc}") from exc
    if not parser.has_section("options"):
        return {}
    return dict(parser.items("options"))


def _deprecation(alias: str, key: str) -> str:
    return (
        f"The {alias.replace('_', '-')} is a deprecated alias to the "
        f"{key.replace('_', '-')} option, please use the latter."
    )


def _check_conf_keys(
    version: str, path: str, conf: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    known = KNOWN_KEYS[version]
    aliases = DEPRECATED_ALIASES.get(version, {})
    accepted: dict[str, str] = {}
    warnings: list[str] = []
    for key, value in conf.items():
        if key in aliases:
            warnings.append(_deprecation(key, aliases[key]))
            accepted[aliases[key]] = value
        elif key in OUTDATED:
            accepted[OUTDATED[key]] = value
        elif key in known:
            accepted[key] = value
        else:
            raise OptionError(
                f"unknown option {key!r} in the config file at {path} "
                f"(Odoo {version} has no such option; this test image refuses it)"
            )
    return accepted, warnings


def _from_environment(version: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Odoo 19.0 reads ODOO_<OPTION> and libpq's PG* variables between odoo.conf and the CLI."""
    if version != "19.0":
        return {}
    values: dict[str, str] = {}
    for key in KNOWN_KEYS[version] - set(PG_ENV.values()):
        name = f"ODOO_{key.upper()}"
        if name in environ:
            values[key] = environ[name]
    for name, key in PG_ENV.items():
        if name in environ:
            values[key] = environ[name]
    return values


def load(version: str, argv: list[str], environ: Mapping[str, str]) -> Options:
    cli = parse_cli(version, argv)
    path = cli.pop("config", "") or environ.get("ODOO_RC", "")
    conf = read_conf(path) if path else {}
    from_file, warnings = _check_conf_keys(version, path, conf)
    aliases = DEPRECATED_ALIASES.get(version, {})
    for alias, key in aliases.items():
        if alias in cli:
            warnings.append(_deprecation(alias, key))
            cli[key] = cli.pop(alias)
    values = {**from_file, **_from_environment(version, environ), **cli}
    return Options(
        version=version,
        values=values,
        warnings=warnings,
        config_file=path,
        explicit=set(values),
    )


def dbfilter_allows(options: Options, db: str, host: str) -> bool:
    """`dbfilter` with Odoo's %h (host) and %d (first label of the host) substitutions."""
    pattern = options.get("dbfilter")
    if not pattern:
        # Without a dbfilter, a db_name list is the list of exposed databases (odoo.http).
        names = options.db_names()
        return db in names if names else True
    hostname = host.partition(":")[0]
    domain = hostname.split(".")[0] if "." in hostname else hostname
    if domain == "www" and "." in hostname:
        domain = hostname.split(".")[1]
    pattern = pattern.replace("%h", re.escape(hostname)).replace("%d", re.escape(domain))
    return re.match(pattern, db) is not None
