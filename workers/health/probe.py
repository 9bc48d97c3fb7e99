"""The health observer's one command per server: for every instance, container state,
restarts, OOM kills, memory and CPU, and a timed probe of /web/health on its host port
(ODOO-HOSTING.md §4.2). Liveness stays DB-independent: no `db_server_status` here."""

from __future__ import annotations

import contextlib
import re

import msgspec

from workers.server.fields import check_port, check_uuid
from workers.server.layout import InstanceLayout
from workers.server.shell import cmd

PROBE_TIMEOUT_SECONDS = 5
# Probes of one server at a time. They all run in ONE curl process (`--parallel`), each a
# socket that mostly waits, so the bound is what a server's instances tolerate at once.
PROBE_CONCURRENCY = 8
INSPECT_FORMAT = (
    '{"name":{{json .Name}},"state":{{json .State}},"restartCount":{{.RestartCount}},'
    '"memoryLimit":{{.HostConfig.Memory}}}'
)
# curl's -w: `%{…}` are curl's variables, a backslash and n its newline.
_PROBE_FORMAT = (
    '{"instanceId":"%s","container":"%s","probe":"%%{http_code} %%{time_total}","order":%d}\\n'
)
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
    """For `parse_health_output`: one `docker stats` and one `docker inspect` for all the
    targets' containers, and one curl probing every target's /web/health, the three at once;
    a handful of processes per server, where a probe per instance forked four.

    `docker stats` samples for a second or two; the observer, not the server, finds each
    container's line in it. `docker inspect` prints a line for each container that exists,
    named, so a missing one is simply absent. curl runs `concurrency` probes at a time, each
    with its own timeout and its own line (its target's ids, its status and time): a
    /web/health that hangs holds one probe slot for its timeout, not the probes queued
    behind it, and a probe's time starts when it gets its slot
    (`--parallel-immediate`: none waits to share another's connection). The two docker
    calls write to files of their own, printed whole once all are done."""
    names = [InstanceLayout(t.slug).app_container(t.color) for t in targets]
    stats = cmd("docker", "stats", "--no-stream", "--format", "{{json .}}")
    inspect = cmd("docker", "inspect", "--type", "container", "-f", INSPECT_FORMAT, *names)
    return "\n".join(
        [
            "d=$(mktemp -d) || exit 1",
            "trap 'rm -rf \"$d\"' EXIT",
            # One command per line: a job sent to the background (`&`) ends its line.
            f'{stats} >"$d/stats" 2>/dev/null &',
            f'{inspect} >"$d/inspect" 2>/dev/null &',
            f"{_probes(targets, names, concurrency)} 2>/dev/null",
            "wait",
            'cat "$d/inspect" "$d/stats"',
        ]
    )


def _probes(targets: list[HealthTarget], names: list[str], concurrency: int) -> str:
    """One curl for every target, each target an operation of its own (`--next`)."""
    words: list[str | int] = ["curl", "--no-progress-meter", "--parallel", "--parallel-immediate"]
    words += ["--parallel-max", max(1, concurrency)]
    for n, (target, name) in enumerate(zip(targets, names, strict=True)):
        url = f"http://127.0.0.1:{check_port(target.http_port_host)}/web/health"
        line = _PROBE_FORMAT % (check_uuid(target.instance_id), name, n)
        words += ["--next"] if n else []
        words += ["-o", "/dev/null", "-m", PROBE_TIMEOUT_SECONDS, "-w", line, url]
    return cmd(*words)


class _Health(msgspec.Struct):
    Status: str


class _State(msgspec.Struct):
    Status: str
    OOMKilled: bool = False
    ExitCode: int = 0
    Health: _Health | None = None


class _Inspect(msgspec.Struct, rename="camel"):
    name: str  # Docker's .Name: the container's name after a "/"
    state: _State
    restart_count: int
    memory_limit: int


class _Stats(msgspec.Struct):
    Name: str = ""
    CPUPerc: str = ""
    MemUsage: str = ""


class _Probe(msgspec.Struct, rename="camel"):
    instance_id: str
    container: str
    probe: str
    order: int = 0  # the target's place: curl prints each probe's line as it ends


_PROBE_LINE = '{"instanceId"'
_INSPECT_LINE = '{"name"'


def parse_health_output(output: str) -> list[ContainerSample]:
    """The probes' lines in the order of their targets, each joined with its container's
    `docker inspect` line (none: the container does not exist) and the first `docker stats`
    line of its container."""
    probes: list[_Probe] = []
    inspected: dict[str, _Inspect] = {}
    stats: dict[str, _Stats] = {}
    for line in output.splitlines():
        if line.startswith(_PROBE_LINE):
            probes.append(msgspec.json.decode(line, type=_Probe))
        elif line.startswith(_INSPECT_LINE):
            found = msgspec.json.decode(line, type=_Inspect)
            inspected.setdefault(found.name.removeprefix("/"), found)
        elif line:
            with contextlib.suppress(msgspec.DecodeError):  # costs only that line's stats
                measured = msgspec.json.decode(line, type=_Stats)
                stats.setdefault(measured.Name, measured)
    probes.sort(key=lambda probe: probe.order)
    return [
        _sample(probe, inspected.get(probe.container), stats.get(probe.container))
        for probe in probes
    ]


def _sample(line: _Probe, inspect: _Inspect | None, stats: _Stats | None) -> ContainerSample:
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
