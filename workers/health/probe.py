"""The health observer's one command per server: for every instance, container state,
restarts, OOM kills, memory and CPU, and a timed probe of /web/health on its host port
(ODOO-HOSTING.md §4.2). Liveness stays DB-independent: no `db_server_status` here."""

from __future__ import annotations

import contextlib
import re

import msgspec

from workers.server.fields import check_port, check_uuid
from workers.server.layout import InstanceLayout
from workers.server.shell import cmd, sequence

PROBE_TIMEOUT_SECONDS = 5
# Probes of one server at a time: each is a few short processes and a curl that mostly waits.
PROBE_CONCURRENCY = 8
INSPECT_FORMAT = (
    '{"state":{{json .State}},"restartCount":{{.RestartCount}},'
    '"memoryLimit":{{.HostConfig.Memory}}}'
)
_LINE_FORMAT = '{"instanceId":"%s","container":"%s","inspect":%s,"probe":"%s"}\\n'
# Each field is judged whole and only when short: a server's answer is the tenant's to write,
# and a search over 40,000 digits (issue 13) held the event loop for 39 s.
MAX_FIELD_CHARS = 64
_SIZE = re.compile(r"([0-9]{1,20}(?:\.[0-9]{1,20})?) ?([kKMGTP]?i?B)")
_PERCENT = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?%?")
_PROBE = re.compile(r"([0-9]{3}) ([0-9]{1,20}(?:\.[0-9]{1,20})?)")
_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PB": 10**15}


class HealthTarget(msgspec.Struct, frozen=True):
    """An instance to observe: the colour serving traffic and the host port of its proxy."""

    instance_id: str
    slug: str
    color: str
    http_port_host: int


class ContainerSample(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: str
    container: str
    container_state: str  # Docker's State.Status, or "missing" when there is no container
    health: str | None
    restart_count: int | None
    oom_killed: bool | None
    exit_code: int | None
    memory_bytes: int | None
    memory_limit_bytes: int | None
    cpu_percent: float | None
    http_status: int | None  # None: nothing answered within the probe's timeout
    response_time_ms: float | None


def health_command(targets: list[HealthTarget], concurrency: int = PROBE_CONCURRENCY) -> str:
    """One JSON line per target, then `docker stats`' lines, for `parse_health_output`.
    `docker stats` runs once for all containers (it samples for a second or two each time it
    runs); the observer, not the server, finds each container's line in it: a `grep` per
    instance was three of the eight processes a probe forked.

    The targets' probes run `concurrency` at a time, in ONE SSH session (one of the server's
    session slots): a /web/health that hangs holds a probe slot for its timeout, not the
    probes queued behind it. A POSIX semaphore: a FIFO holding one token per slot; each
    probe takes a token before it starts and gives it back when done. Each probe writes its
    line to a file of its own, printed whole once all are done."""
    stats = "stats=$(" + cmd("docker", "stats", "--no-stream", "--format", "{{json .}}")
    lines = [
        "d=$(mktemp -d) || exit 1",
        "trap 'rm -rf \"$d\"' EXIT",
        'mkfifo "$d/slots" && exec 3<>"$d/slots" || exit 1',
        f"n=0; while [ $n -lt {max(1, concurrency)} ]; do echo >&3; n=$((n + 1)); done",
        stats + " 2>/dev/null)",
    ]
    for n, target in enumerate(targets):
        lines.append(f'read -r _ <&3; {{ {_probe(target)}; echo >&3; }} >"$d/{n}" &')
    lines += ["wait", 'cat "$d"/[0-9]* 2>/dev/null', "printf '%s\\n' \"$stats\""]
    # One command per line: a job sent to the background (`&`) ends its line, not a `;`.
    return "\n".join(lines)


def _probe(target: HealthTarget) -> str:
    name = InstanceLayout(target.slug).app_container(target.color)
    url = f"http://127.0.0.1:{check_port(target.http_port_host)}/web/health"
    probe = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"]
    probe += ["-m", str(PROBE_TIMEOUT_SECONDS), url]
    return sequence(
        f"i=$({cmd('docker', 'inspect', '-f', INSPECT_FORMAT, name)} 2>/dev/null) || i=null",
        f"p=$({cmd(*probe)})",
        cmd("printf", _LINE_FORMAT, check_uuid(target.instance_id), name) + ' "$i" "$p"',
    )


class _Health(msgspec.Struct):
    Status: str


class _State(msgspec.Struct):
    Status: str
    OOMKilled: bool = False
    ExitCode: int = 0
    Health: _Health | None = None


class _Inspect(msgspec.Struct, rename="camel"):
    state: _State
    restart_count: int
    memory_limit: int


class _Stats(msgspec.Struct):
    Name: str = ""
    CPUPerc: str = ""
    MemUsage: str = ""


class _Line(msgspec.Struct, rename="camel"):
    instance_id: str
    container: str
    inspect: _Inspect | None
    probe: str


_PROBE_LINE = '{"instanceId"'


def parse_health_output(output: str) -> list[ContainerSample]:
    """The probes' lines, each joined with the first `docker stats` line of its container."""
    probes: list[_Line] = []
    stats: dict[str, _Stats] = {}
    for line in output.splitlines():
        if line.startswith(_PROBE_LINE):
            probes.append(msgspec.json.decode(line, type=_Line))
        elif line:
            with contextlib.suppress(msgspec.DecodeError):  # costs only that line's stats
                found = msgspec.json.decode(line, type=_Stats)
                stats.setdefault(found.Name, found)
    return [_sample(probe, stats.get(probe.container)) for probe in probes]


def _sample(line: _Line, stats: _Stats | None) -> ContainerSample:
    inspect = line.inspect
    used, limit = _memory(stats.MemUsage) if stats else (None, None)
    if inspect is not None and inspect.memory_limit > 0:
        limit = inspect.memory_limit
    probe = _PROBE.fullmatch(line.probe[:MAX_FIELD_CHARS])
    answered = probe is not None and probe.group(1) != "000"
    state = inspect.state if inspect else None
    return ContainerSample(
        instance_id=line.instance_id[:MAX_FIELD_CHARS],
        container=line.container[:MAX_FIELD_CHARS],
        container_state=state.Status[:MAX_FIELD_CHARS] if state else "missing",
        health=state.Health.Status[:MAX_FIELD_CHARS] if state and state.Health else None,
        restart_count=inspect.restart_count if inspect else None,
        oom_killed=state.OOMKilled if state else None,
        exit_code=state.ExitCode if state else None,
        memory_bytes=used,
        memory_limit_bytes=limit,
        cpu_percent=_percent(stats.CPUPerc) if stats else None,
        http_status=int(probe.group(1)) if probe and answered else None,
        response_time_ms=round(float(probe.group(2)) * 1000, 1) if probe and answered else None,
    )


def _memory(usage: str) -> tuple[int | None, int | None]:
    """`"1.5GiB / 7.7GiB"` (docker stats' MemUsage) as bytes used and limit."""
    if len(usage) > 2 * MAX_FIELD_CHARS:
        return None, None
    sizes = [_bytes(part) for part in usage.split("/")]
    if len(sizes) != 2:
        return None, None
    return sizes[0], sizes[1]


def _bytes(text: str) -> int | None:
    match = _SIZE.fullmatch(text.strip()[:MAX_FIELD_CHARS])
    if match is None or match.group(2) not in _UNITS:
        return None
    return round(float(match.group(1)) * _UNITS[match.group(2)])


def _percent(text: str) -> float | None:
    if not _PERCENT.fullmatch(text[:MAX_FIELD_CHARS]):
        return None
    return float(text.rstrip("%"))
