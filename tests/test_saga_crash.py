"""A worker process killed with SIGKILL mid-provisioning is replaced by another, which
resumes from the step it was in: the steps completed before are not run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from saga_fixtures import (  # noqa: F401
    ACK_WAIT,
    PROVISIONING,
    Fleet,
    bare_fleet_fixture,
    kill_hung_standins,
    steps_of,
)

from events.instance import InstanceProvisioned, ProvisioningFailed
from events.metadata import EventMetadata
from events.operation import OperationStarted, OperationStepCompleted, OperationStepStarted
from events.server import ServerValidated, server_stream
from odoofleet.settings import Settings


def worker_process(settings: Settings, root: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    """`python -m odoofleet.cli_work` against this test's database, stream and server."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "ODOOFLEET_SECRET_KEY": settings.secret_key,
        "ODOOFLEET_NATS_STREAM": settings.nats_stream,
        "ODOOFLEET_SUBJECT_PREFIX": settings.subject_prefix,
        "ODOOFLEET_SERVER_ALLOWED_NETWORKS": settings.server_allowed_networks,
        "ODOOFLEET_WORKER_NAME": name,
        "ODOOFLEET_LOG_FORMAT": "text",
    }
    argv = [sys.executable, "-m", "odoofleet.cli_work", "--root", root, "--ack-wait", str(ACK_WAIT)]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=out)


@pytest.fixture
def workers(settings: Settings, bare_fleet: Fleet, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(settings, bare_fleet.root, tmp_path)
    yield started
    started.stop_all()


class Workers:
    """`odoofleet work` processes of this test."""

    def __init__(self, settings: Settings, root: str, folder: Path) -> None:
        self.settings, self.root, self.folder = settings, root, folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        process = worker_process(self.settings, self.root, name, self.folder / f"{name}.log")
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_a_killed_worker_s_provisioning_is_resumed_without_redoing_steps(
    bare_fleet: Fleet, workers: Workers
) -> None:
    first = workers.start("worker-1")
    server_id = await bare_fleet.register_server()
    await bare_fleet.wait_for(server_stream(server_id), ServerValidated)
    bare_fleet.sshd.arm("hang:inspect")  # db-healthy polls `docker inspect`
    instance = await bare_fleet.create_instance(server_id)
    await bare_fleet.wait_step_started(instance.operation_id, "db-healthy")

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    bare_fleet.sshd.disarm("hang:inspect")
    kill_hung_standins(bare_fleet.sshd)  # the dead worker's command ends on the server
    workers.start("worker-2")
    done = await bare_fleet.wait_for(
        instance.stream, InstanceProvisioned, ProvisioningFailed, timeout=60
    )

    assert isinstance(done, InstanceProvisioned), done
    operation = await bare_fleet.operation(instance.operation_id)
    assert steps_of(operation, OperationStepCompleted) == PROVISIONING
    started = steps_of(operation, OperationStepStarted)
    assert started == [*PROVISIONING[:5], "db-healthy", *PROVISIONING[5:]]
    assert [e.worker for e in operation if isinstance(e, OperationStarted)] == ["worker-1"]
    recorded = await bare_fleet.store.read_stream(f"operation-{instance.operation_id}")
    completed_by = {
        msgspec.json.decode(r.data)["step"]: msgspec.json.decode(r.metadata, type=EventMetadata)
        for r in recorded
        if r.event_type == "OperationStepCompleted"
    }
    assert completed_by["db-up"].actor.id == "system:worker-1"
    assert completed_by["db-healthy"].actor.id == "system:worker-2"
    argvs = bare_fleet.sshd.docker_argvs()
    assert sum(argv[:2] == ["docker", "info"] for argv in argvs) == 2  # validation, preflight
    volumes = sum(argv[:3] == ["docker", "volume", "create"] for argv in argvs)
    assert volumes == 2  # layout: filestore and addons
    assert sum("up" in argv and "acme-db" in argv for argv in argvs) == 1  # db-up
