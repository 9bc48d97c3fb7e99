"""What a server is and whether it can host an instance, gathered in one command: used by
the server-validation saga and as the provisioning preflight (ODOO-HOSTING.md §2.6 step 0)."""

from __future__ import annotations

import msgspec

from workers.server.fields import check_root
from workers.server.shell import cmd, if_then, sequence

_MEMINFO = (
    '/^MemTotal:/ {printf "ram_total_bytes=%.0f\\n", $2 * 1024} '
    '/^MemAvailable:/ {printf "ram_available_bytes=%.0f\\n", $2 * 1024}'
)
_DF = 'NR == 2 {printf "disk_total_bytes=%.0f\\ndisk_free_bytes=%.0f\\n", $2 * 1024, $4 * 1024}'


MAX_FACT_CHARS = 200


class ServerFacts(msgspec.Struct, frozen=True, kw_only=True):
    os_name: str
    os_version: str
    cpu_cores: int
    ram_total_bytes: int
    ram_available_bytes: int
    disk_total_bytes: int  # of the filesystem holding Docker's data
    disk_free_bytes: int
    docker_access: bool  # the user can talk to the Docker daemon
    docker_version: str | None
    docker_error: str | None
    compose_version: str | None
    user: str
    groups: tuple[str, ...]
    root_writable: bool  # the base directory (/srv/odoofleet) exists or was made, writable


def server_facts_command(root: str) -> str:
    """Prints `key=value` lines for `parse_server_facts`. Each fact is gathered on its own,
    so a missing Docker still reports the OS, CPU, RAM and disk."""
    base = check_root(root)
    docker_version = "v=$(" + cmd("docker", "version", "--format", "{{.Server.Version}}") + " 2>&1)"
    return sequence(
        "( . /etc/os-release 2>/dev/null; "
        + cmd("printf", "os_name=%s\\nos_version=%s\\n")
        + ' "${NAME:-unknown}" "${VERSION_ID:-}" )',
        cmd("printf", "cpu_cores=%s\\n") + ' "$(nproc)"',
        cmd("awk", _MEMINFO, "/proc/meminfo"),
        if_then(
            docker_version,
            cmd("printf", "docker_access=yes\\ndocker_version=%s\\n") + ' "$v"',
            # The daemon's complaint (e.g. permission denied on the socket) is the last line.
            cmd("printf", "docker_access=no\\ndocker_error=%s\\n")
            + ' "$(printf \'%s\\n\' "$v" | tail -n 1)"',
        ),
        cmd("printf", "compose_version=%s\\n")
        + ' "$('
        + cmd("docker", "compose", "version", "--short")
        + ' 2>/dev/null | head -n 1)"',
        "d=$(" + cmd("docker", "info", "-f", "{{.DockerRootDir}}") + " 2>/dev/null)",
        '[ -d "$d" ] || d=/',
        'df -Pk "$d" | ' + cmd("awk", _DF),
        cmd("printf", "user=%s\\ngroups=%s\\n") + ' "$(id -un)" "$(id -nG)"',
        if_then(
            f"mkdir -p {cmd(base)} 2>/dev/null && [ -w {cmd(base)} ]",
            "echo root_writable=yes",
            "echo root_writable=no",
        ),
    )


def parse_server_facts(output: str) -> ServerFacts:
    """The facts in `output`; each value cut to MAX_FACT_CHARS, since they end up in events
    and status messages and the server writes them."""
    facts: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in _KEYS:
            facts[key.strip()] = value.strip()[:MAX_FACT_CHARS]

    def number(key: str) -> int:
        value = facts.get(key, "")
        # int() of more digits than the interpreter allows raises; no fact is that large.
        return int(value) if value.isdigit() and len(value) <= 20 else 0

    access = facts.get("docker_access") == "yes"
    return ServerFacts(
        os_name=facts.get("os_name") or "unknown",
        os_version=facts.get("os_version", ""),
        cpu_cores=number("cpu_cores"),
        ram_total_bytes=number("ram_total_bytes"),
        ram_available_bytes=number("ram_available_bytes"),
        disk_total_bytes=number("disk_total_bytes"),
        disk_free_bytes=number("disk_free_bytes"),
        docker_access=access,
        docker_version=(facts.get("docker_version") or None) if access else None,
        docker_error=None if access else facts.get("docker_error") or "docker did not answer",
        compose_version=facts.get("compose_version") or None,
        user=facts.get("user", ""),
        groups=tuple(facts.get("groups", "").split()),
        root_writable=facts.get("root_writable") == "yes",
    )


_KEYS = frozenset(
    {
        "os_name",
        "os_version",
        "cpu_cores",
        "ram_total_bytes",
        "ram_available_bytes",
        "disk_total_bytes",
        "disk_free_bytes",
        "docker_access",
        "docker_version",
        "docker_error",
        "compose_version",
        "user",
        "groups",
        "root_writable",
    }
)


def preflight_problems(
    facts: ServerFacts, *, min_disk_free_bytes: int, min_ram_available_bytes: int
) -> list[str]:
    """Why this server cannot take the instance now; empty when it can. The RAM asked for
    should cover one extra colour: blue/green runs two app containers at once (§2.9)."""
    problems: list[str] = []
    if not facts.docker_access:
        problems.append(f"{facts.user} cannot use Docker: {facts.docker_error}")
    if facts.compose_version is None:
        problems.append("Docker Compose v2 (`docker compose`) is not installed")
    if not facts.root_writable:
        problems.append(f"{facts.user} cannot create or write the base directory")
    if facts.disk_free_bytes < min_disk_free_bytes:
        problems.append(
            f"only {_gib(facts.disk_free_bytes)} free on Docker's disk, "
            f"{_gib(min_disk_free_bytes)} needed"
        )
    if facts.ram_available_bytes < min_ram_available_bytes:
        problems.append(
            f"only {_gib(facts.ram_available_bytes)} of RAM available, "
            f"{_gib(min_ram_available_bytes)} needed"
        )
    return problems


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"
