"""Backup and restore throughput of odoofleet's pipeline against the same work run by hand,
over the same SSH connection, on the real-Docker tier (tests/realdocker_harness.py).

Ours: `pg_dump -Fc` in the db container and a tar of the filestore volume, streamed through
this process, sealed (AES-256-GCM in 1 MiB chunks) and written back to the server over SFTP
(a `local` destination); restore streams them back into `pg_restore` and `tar -x`.
By hand: `pg_dump -Fc | openssl enc -aes-256-ctr > file` and `tar | openssl … > file` on the
server itself (no byte leaves it), and their reverse. The ratio is hand time / our time
(1.0 = as fast as by hand). Peak RSS growth of this process is measured at two sizes, to
show it does not grow with the size of a backup.

    python -m bench.backup --mb 256      # database and filestore of ~256 MB each
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from realdocker_fixtures import DockerSshd, docker_server_on  # noqa: E402
from realdocker_harness import DockerEngine, running_engine  # noqa: E402

from workers.backups.commands import (  # noqa: E402
    archive_filestore_command,
    dump_database_command,
    recreate_database_command,
    restore_database_command,
    restore_filestore_command,
)
from workers.backups.destinations import SftpDestination  # noqa: E402
from workers.backups.parts import open_part, store_part  # noqa: E402
from workers.backups.remote_stream import stream_in, stream_out  # noqa: E402
from workers.server.layout import InstanceLayout  # noqa: E402
from workers.server.render import POSTGRES_IMAGE  # noqa: E402
from workers.ssh.connection import ServerConnectionInfo  # noqa: E402
from workers.ssh.runner import SshRunner  # noqa: E402

SLUG = "benchbackup"
DB = "benchbackup"
KEY = os.urandom(32)
LIMIT = 3600.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(engine: DockerEngine, layout: InstanceLayout, mb: int) -> None:
    """A database of ~`mb` MB of rows and a filestore of `mb` MB of random files."""
    with contextlib.suppress(RuntimeError):
        engine.docker("rm", "-f", layout.db_container)
    with contextlib.suppress(RuntimeError):
        engine.docker("volume", "rm", "-f", layout.filestore_volume)
    engine.docker(
        "run", "-d", "--name", layout.db_container, "-e", "POSTGRES_USER=odoo",
        "-e", "POSTGRES_PASSWORD=bench", "-e", "POSTGRES_DB=postgres", POSTGRES_IMAGE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while engine.docker(
        "exec", layout.db_container, "pg_isready", "-U", "odoo", check=False
    ).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError("the bench database did not start")
        time.sleep(0.5)
    time.sleep(1)
    psql = ["exec", layout.db_container, "psql", "-U", "odoo", "-v", "ON_ERROR_STOP=1"]
    engine.docker(*psql, "-d", "postgres", "-c", f"CREATE DATABASE {DB}")
    # ~1 KB a row, half of it random hex (pg_dump compresses the rest away).
    rows = mb * 1024
    fill = (
        f"CREATE TABLE attachment AS SELECT g AS id, repeat(md5(g::text), 16) AS body,"
        f" (SELECT string_agg(md5(random()::text || s.n || g), '')"
        f" FROM generate_series(1, 16) s(n))"
        f" AS noise FROM generate_series(1, {rows}) g"
    )
    engine.docker(*psql, "-d", DB, "-c", fill, timeout=1800)
    script = (
        f"mkdir -p /data/filestore/{DB} && for n in $(seq 1 {max(1, mb // 16)}); do"
        f" head -c 16777216 /dev/urandom > /data/filestore/{DB}/f$n; done"
    )
    engine.docker(
        "run", "--rm", "-v", f"{layout.filestore_volume}:/data", "--entrypoint", "sh",
        POSTGRES_IMAGE, "-c", script, timeout=1800,
    )  # fmt: skip


async def ours(
    runner: SshRunner, server: ServerConnectionInfo, layout: InstanceLayout, root: str
) -> tuple[float, float]:
    async def sftp():  # type: ignore[no-untyped-def]
        return await runner.open_sftp(server)

    async def nothing() -> None:
        return None

    destination = SftpDestination(sftp, root, nothing)
    started = time.monotonic()
    parts = []
    for name, command in (
        ("database", dump_database_command(layout, DB)),
        ("filestore", archive_filestore_command(layout, DB)),
    ):
        source = stream_out(runner, server, command, what=name, time_limit=LIMIT)
        parts.append(await store_part(destination, f"ours/{name}.ofb", name, KEY, source))  # type: ignore[arg-type]
    backup = time.monotonic() - started

    started = time.monotonic()
    await runner.run(server, recreate_database_command(layout, DB))

    def chunks(index: int) -> AsyncIterator[bytes]:
        return open_part(destination, parts[index], KEY)

    await stream_in(runner, server, restore_database_command(layout, DB), chunks(0),
                    what="pg_restore", time_limit=LIMIT)  # fmt: skip
    await stream_in(runner, server, restore_filestore_command(layout, DB), chunks(1),
                    what="tar -x", time_limit=LIMIT)  # fmt: skip
    restore = time.monotonic() - started
    await destination.close()
    return backup, restore


async def by_hand(
    runner: SshRunner, server: ServerConnectionInfo, layout: InstanceLayout, root: str
) -> tuple[float, float]:
    enc = "openssl enc -aes-256-ctr -pbkdf2 -pass pass:bench"
    dec = f"{enc} -d"
    started = time.monotonic()
    backup_cmd = (
        f"mkdir -p {root}/hand && {dump_database_command(layout, DB)} | {enc} > {root}/hand/db"
        f" && {archive_filestore_command(layout, DB)} | {enc} > {root}/hand/fs"
    )
    done = await runner.run(server, backup_cmd, time_limit=LIMIT)
    assert done.ok, done.stderr
    backup = time.monotonic() - started
    started = time.monotonic()
    restore_cmd = (
        f"{recreate_database_command(layout, DB)} && {dec} < {root}/hand/db |"
        f" {restore_database_command(layout, DB)} && {dec} < {root}/hand/fs |"
        f" {restore_filestore_command(layout, DB)}"
    )
    done = await runner.run(server, restore_cmd, time_limit=LIMIT)
    assert done.ok, done.stderr
    return backup, time.monotonic() - started


async def measure(sshd: DockerSshd, layout: InstanceLayout) -> dict[str, float]:
    runner = SshRunner(command_timeout=LIMIT)
    server = sshd.connection_info()
    root = tempfile.mkdtemp(prefix="bench-backup-", dir=str(sshd.base))
    try:
        rss_before = peak_rss_mb()
        hand_backup, hand_restore = await by_hand(runner, server, layout, root)
        our_backup, our_restore = await ours(runner, server, layout, root)
        return {
            "hand_backup_s": hand_backup,
            "our_backup_s": our_backup,
            "backup_ratio": hand_backup / our_backup,
            "hand_restore_s": hand_restore,
            "our_restore_s": our_restore,
            "restore_ratio": hand_restore / our_restore,
            "peak_rss_growth_mb": peak_rss_mb() - rss_before,
            "peak_rss_mb": peak_rss_mb(),
        }
    finally:
        await runner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="MB of database and of filestore")
    parser.add_argument("--small-mb", type=int, default=32, help="the small run (RSS)")
    args = parser.parse_args()
    layout = InstanceLayout(SLUG)
    with running_engine() as engine:
        engine.ensure_images()
        with docker_server_on(engine, Path(tempfile.mkdtemp(prefix="ofb-"))) as sshd:
            for mb in (args.small_mb, args.mb):
                prepare(engine, layout, mb)
                sizes = engine.docker(
                    "exec", layout.db_container, "psql", "-U", "odoo", "-d", DB, "-tAc",
                    f"SELECT pg_size_pretty(pg_database_size('{DB}'))",
                ).stdout.strip()  # fmt: skip
                found = asyncio.run(measure(sshd, layout))
                shown = ", ".join(f"{name}={value:.2f}" for name, value in found.items())
                print(f"{mb} MB filestore, database {sizes}: {shown}", flush=True)
            with contextlib.suppress(RuntimeError):
                engine.docker("rm", "-f", layout.db_container)
                engine.docker("volume", "rm", "-f", layout.filestore_volume)


if __name__ == "__main__":
    main()
