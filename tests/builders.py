"""Small builders of events and metadata for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

import commands.instance
import commands.instance_state
import commands.server
import commands.server_state
from commands.instance import CreateInstance
from commands.server import RegisterServer
from events.instance import InstanceProvisioned, InstanceSettings
from events.metadata import Actor, EventMetadata
from events.operation import OperationStepCompleted
from events.registry import DomainEvent
from events.secrets import Sealed
from events.server import ServerRegistered


def meta(org: str = "org-a", user: str = "user-1") -> EventMetadata:
    return EventMetadata(
        actor=Actor(id=user, name="Test User"),
        org_id=org,
        correlation_id=str(uuid.uuid4()),
        client_ip="127.0.0.1",
        user_agent="pytest",
    )


def step(n: int, operation_id: str = "op") -> OperationStepCompleted:
    return OperationStepCompleted(
        operation_id=operation_id, step=f"step-{n}", duration_ms=n, output=""
    )


# An instance for the deciders' tests.
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ID = "0b7c4f4e-2f7e-4a35-9d7c-1f4f8f0d9a11"
SERVER = "6f1f2a8e-0c4b-4d52-a0b1-7f3e9c2d5b60"
SETTINGS = InstanceSettings(
    workers=1,
    max_cron_threads=1,
    limit_memory_hard=2,
    limit_memory_soft=1,
    limit_time_cpu=60,
    limit_time_real=120,
    log_level="info",
)


def create_command(**changes: object) -> CreateInstance:
    fields: dict[str, object] = {
        "instance_id": ID,
        "operation_id": "op-provision",
        "name": "Acme",
        "slug": "acme",
        "server_id": SERVER,
        "project_id": None,
        "template_id": None,
        "branch": None,
        "environment_type": "development",
        "odoo_version": "19.0",
        "odoo_edition": "community",
        "addons_path": None,
        "env_vars": {"A": Sealed("v1:a")},
        "auto_subdomain": "acme.example.test",
        "http_port": 8069,
        "longpolling_port": 8072,
        "http_port_host": 20000,
        "longpolling_port_host": 20001,
        "settings": SETTINGS,
        "mcp_write_enabled": False,
        "db_name": "acme",
        "admin_password": Sealed("v1:admin"),
        "db_password": Sealed("v1:db"),
        "admin_user_password": Sealed("v1:admin-user"),
    }
    fields.update(changes)
    return CreateInstance(**fields)  # type: ignore[arg-type]


def created_instance() -> list[DomainEvent]:
    """The events the creation above appends: the instance waits for its provisioning."""
    return commands.instance.decide(create_command(), commands.instance_state.initial_state(), NOW)


def provisioned_instance() -> list[DomainEvent]:
    """The instance above, provisioned (`op-provision`): running in blue."""
    provisioned = InstanceProvisioned(
        instance_id=ID, operation_id="op-provision", active_color="blue"
    )
    return [*created_instance(), provisioned]


# The server the instance above lives on, for the server decider's tests.
def register_server(host_key: str | None = None) -> RegisterServer:
    return RegisterServer(
        server_id=SERVER,
        operation_id="op-validate",
        name="web-1",
        host="10.0.0.5",
        port=22,
        ssh_user="deploy",
        auth_method="key",
        ssh_private_key=Sealed("v1:key"),
        ssh_password=None,
        host_key=host_key,
        max_ssh_sessions=4,
    )


def server_registered(**changes: Any) -> ServerRegistered:
    """The event that registers the server above (`changes`: other values of its fields)."""
    registered = ServerRegistered(
        server_id=SERVER,
        name="web-1",
        host="10.0.0.5",
        port=22,
        ssh_user="deploy",
        auth_method="key",
        ssh_private_key=Sealed("v1:key"),
        ssh_password=None,
        host_key=None,
        max_ssh_sessions=4,
        created_at=NOW,
    )
    return msgspec.structs.replace(registered, **changes)


def registered_server(host_key: str | None = None) -> list[DomainEvent]:
    """The events a fresh registration appends: the server is pending validation."""
    command = register_server(host_key)
    return commands.server.decide(command, commands.server_state.initial_state(), NOW)
