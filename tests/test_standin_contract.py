"""The stand-in docker and the real one agree where the sagas depend on them: one scenario
(compose up/stop/down with and without -v, combined short flags, removals refused while in
use, the errors of missing objects, the health probe's one `inspect` of many containers) runs
on both, and both must show the same results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from realdocker_fixtures import docker_engine_fixture  # noqa: F401
from realdocker_harness import DockerEngine

from odoofleet.sandbox.server import STANDIN_DIR, compose_binary
from workers.health.probe import INSPECT_FORMAT

# An image with one VOLUME, so a container of it gets an anonymous volume; built from the
# imported base on the real side, declared in the stand-in's images.json on the other.
IMAGE = "odoofleet-contract/volume:1"
IMAGE_DOCKERFILE = 'FROM local/debian:bookworm\nVOLUME /mnt/extra\nCMD ["sleep", "infinity"]\n'

# The second container, for `inspect` of several at once; a memory limit, so the probe's
# memoryLimit shows one (the app has none: 0).
BASE_IMAGE = "local/debian:bookworm"
SIDECAR_MEMORY = 64 * 2**20

Docker = Callable[..., tuple[int, str, str]]
Observation = tuple[str, object]


def compose_file(project: str) -> str:
    return f"""\
services:
  app:
    image: {IMAGE}
    stop_signal: SIGKILL
    volumes: [data:/data]
    networks: [backend]
    labels: {{odoofleet.contract: "{project}"}}
  sidecar:
    image: {BASE_IMAGE}
    command: [sleep, infinity]
    stop_signal: SIGKILL
    deploy: {{resources: {{limits: {{memory: "{SIDECAR_MEMORY}b"}}}}}}
volumes:
  data: {{name: {project}_data}}
networks:
  backend: {{name: {project}_backend}}
"""


def mounts(raw: str) -> list[tuple[str, str, str]]:
    """inspect's .Mounts, the anonymous volume's random name as `anonymous`."""
    return sorted(
        (
            m["Type"],
            m["Destination"],
            "anonymous" if re.fullmatch(r"[0-9a-f]{64}", m["Name"]) else m["Name"],
        )
        for m in json.loads(raw)
    )


def anonymous_volume(raw: str) -> str:
    return next(m["Name"] for m in json.loads(raw) if re.fullmatch(r"[0-9a-f]{64}", m["Name"]))


def probe_lines(raw: str) -> list[tuple[object, ...]]:
    """The health probe's inspect lines (INSPECT_FORMAT), the fields the probe reads."""
    seen = []
    for line in filter(None, raw.splitlines()):  # none found: a blank line
        found = json.loads(line)
        state = found["state"]
        seen.append(
            (
                found["name"],
                state["Status"],
                state["OOMKilled"],
                state["ExitCode"],
                "Health" in state,
                found["restartCount"],
                found["memoryLimit"],
            )
        )
    return seen


def run_scenario(docker: Docker, folder: Path) -> list[Observation]:
    project = f"contract{uuid.uuid4().hex[:10]}"
    compose = folder / "compose.yaml"
    compose.write_text(compose_file(project))
    up = ("compose", "-p", project, "-f", str(compose))
    app, label = f"{project}-app-1", f"label=com.docker.compose.project={project}"
    sidecar, missing = f"{project}-sidecar-1", f"{project}_missing"
    gone = f"No such container: {missing}"  # the daemon's error, asked for containers only
    seen: list[Observation] = []

    def code(name: str, *args: str, says: str = "", on: int = 2) -> None:
        """The exit code, and whether stderr (on=1: stdout) says what Docker's does."""
        result = docker(*args)
        seen.append((name, (result[0], says in str(result[on]) if says else None)))

    def lines(name: str, *args: str) -> None:
        result = docker(*args)
        seen.append((name, (result[0], len(result[1].split()))))

    anonymous: list[str] = []
    try:
        code("up", *up, "up", "-d")
        lines("ps -aq", "ps", "-aq", "--filter", label)
        lines("ps -qa", "ps", "-qa", "--filter", label)
        lines("ps -q running", "ps", "-q", "--filter", label)
        # The health probe's inspect: one call for many names, a line for each that exists.
        status, out, err = docker("inspect", "--type", "container", "-f", "{{.Name}}", app, missing)
        seen.append(("inspect -f of one and a missing", (status, out.split(), gone in err)))
        status, out, err = docker("inspect", "--type", "container", "-f", "{{.Name}}", missing)
        seen.append(("inspect -f of a missing", (status, out.strip(), gone in err)))
        status, out, err = docker("inspect", "--type", "container", app, missing)
        names = [found["Name"] for found in json.loads(out)]
        seen.append(("inspect of one and a missing", (status, names, gone in err)))
        status, out, err = docker(
            "inspect", "--type", "container", "-f", INSPECT_FORMAT, app, sidecar
        )
        seen.append(("the probe's inspect", (status, probe_lines(out), err)))
        first = docker("inspect", "-f", "{{json .Mounts}}", app)[1]
        seen.append(("mounts", mounts(first)))
        anonymous.append(anonymous_volume(first))
        code("network rm in use", "network", "rm", f"{project}_backend", says="active endpoints")
        code("volume rm in use", "volume", "rm", f"{project}_data", says="volume is in use")
        code("exec a missing tool", "exec", app, "nosuchtool", says="executable file not", on=1)
        code("stop", *up, "stop")
        lines("ps -q after stop", "ps", "-q", "--filter", label)
        lines("ps -aq after stop", "ps", "-aq", "--filter", label)
        code("exec when stopped", "exec", app, "true", says="is not running")
        code("down", *up, "down")
        lines("ps -aq after down", "ps", "-aq", "--filter", label)
        code("network gone", "network", "inspect", f"{project}_backend", says="not found")
        code("named volume kept", "volume", "inspect", f"{project}_data")
        code("anonymous volume kept", "volume", "inspect", anonymous[0])
        code("down again", *up, "down")
        code("up again", *up, "up", "-d")
        second = docker("inspect", "-f", "{{json .Mounts}}", app)[1]
        anonymous.append(anonymous_volume(second))
        seen.append(("a new anonymous volume", anonymous[1] != anonymous[0]))
        code("rm -fv", "rm", "-fv", app)
        code("rm -v took its anonymous volume", "volume", "inspect", anonymous[1], says="no such")
        code("rm -fv kept the named one", "volume", "inspect", f"{project}_data")
        code("down -v", *up, "down", "-v")
        code("down -v took the named one", "volume", "inspect", f"{project}_data", says="no such")
        code("network rm missing", "network", "rm", f"{project}_x", says="not found")
        code("volume rm missing", "volume", "rm", f"{project}_x", says="no such volume")
        code("inspect missing", "inspect", f"{project}_x", says="No such object")
        code("rm -f missing", "rm", "-f", f"{project}_x")
        code("rm missing", "rm", f"{project}_x", says="No such container")
        code("exec missing", "exec", f"{project}_x", "true", says="No such container")
    finally:
        docker(*up, "down", "-v")
        for name in anonymous:
            docker("volume", "rm", name)
    return seen


EXPECTED: list[Observation] = [
    ("up", (0, None)),
    ("ps -aq", (0, 2)),
    ("ps -qa", (0, 2)),
    ("ps -q running", (0, 2)),
    ("inspect -f of one and a missing", (1, ["/<project>-app-1"], True)),
    ("inspect -f of a missing", (1, "", True)),
    ("inspect of one and a missing", (1, ["/<project>-app-1"], True)),
    (
        "the probe's inspect",
        (
            0,
            [
                ("/<project>-app-1", "running", False, 0, False, 0, 0),
                ("/<project>-sidecar-1", "running", False, 0, False, 0, SIDECAR_MEMORY),
            ],
            "",
        ),
    ),
    ("mounts", [("volume", "/data", "<project>_data"), ("volume", "/mnt/extra", "anonymous")]),
    ("network rm in use", (1, True)),
    ("volume rm in use", (1, True)),
    ("exec a missing tool", (126, True)),
    ("stop", (0, None)),
    ("ps -q after stop", (0, 0)),
    ("ps -aq after stop", (0, 2)),
    ("exec when stopped", (1, True)),
    ("down", (0, None)),
    ("ps -aq after down", (0, 0)),
    ("network gone", (1, True)),
    ("named volume kept", (0, None)),
    ("anonymous volume kept", (0, None)),
    ("down again", (0, None)),
    ("up again", (0, None)),
    ("a new anonymous volume", True),
    ("rm -fv", (0, None)),
    ("rm -v took its anonymous volume", (1, True)),
    ("rm -fv kept the named one", (0, None)),
    ("down -v", (0, None)),
    ("down -v took the named one", (1, True)),
    ("network rm missing", (1, True)),
    ("volume rm missing", (1, True)),
    ("inspect missing", (1, True)),
    ("rm -f missing", (0, None)),
    ("rm missing", (1, True)),
    ("exec missing", (1, True)),
]


def expected_for(seen: list[Observation]) -> list[Observation]:
    """EXPECTED with the run's project name in place of <project>."""
    project = next(
        str(name).removesuffix("_data")
        for key, value in seen
        if key == "mounts" and isinstance(value, list)
        for _, _, name in value
        if str(name).endswith("_data")
    )
    expected: list[Observation] = json.loads(json.dumps(EXPECTED).replace("<project>", project))
    return expected


def normalized(observations: list[Observation]) -> list[Observation]:
    same: list[Observation] = json.loads(json.dumps(observations))  # tuples become lists
    return same


def cli(env: dict[str, str]) -> Docker:
    def docker(*args: str) -> tuple[int, str, str]:
        done = subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, timeout=120
        )
        return done.returncode, done.stdout, done.stderr

    return docker


@pytest.fixture
def standin(tmp_path: Path) -> Docker:
    state = tmp_path / "standin-state"
    state.mkdir()
    (state / "images.json").write_text(json.dumps({IMAGE: ["/mnt/extra"]}))
    path = [str(STANDIN_DIR), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    env = {
        **os.environ,
        "PATH": ":".join(path),
        "ODOOFLEET_STANDIN_STATE": str(state),
        "ODOOFLEET_COMPOSE_BIN": str(compose_binary()),
    }
    return cli(env)


@pytest.fixture
def real_docker(docker_engine: DockerEngine, tmp_path: Path) -> Docker:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    docker = cli({**env, **docker_engine.env, "DOCKER_BUILDKIT": "0"})
    build = tmp_path / "image"
    build.mkdir()
    (build / "Dockerfile").write_text(IMAGE_DOCKERFILE)
    code, _, err = docker("build", "-q", "-t", IMAGE, str(build))
    assert code == 0, err
    return docker


def test_the_standin_shows_what_docker_shows(standin: Docker, tmp_path: Path) -> None:
    seen = normalized(run_scenario(standin, tmp_path))

    assert seen == normalized(expected_for(seen))


@pytest.mark.realdocker
def test_real_docker_shows_what_the_contract_says(real_docker: Docker, tmp_path: Path) -> None:
    seen = normalized(run_scenario(real_docker, tmp_path))

    assert seen == normalized(expected_for(seen))
