"""The read functions the API calls, in one place. Each takes a connection or the pool and
the caller's organization, and returns msgspec Structs (snake_case)."""

from __future__ import annotations

from projections.audit import AuditEntry
from projections.errors import InvalidCursor
from projections.health import HealthView
from projections.instances import DomainView, InstanceView
from projections.operations import OperationStepView, OperationView
from projections.read_audit import AuditFilter, query_audit, search_audit
from projections.read_health import get_health
from projections.read_health_score import HealthScoreView, get_health_score
from projections.read_instances import get_instance, list_instances
from projections.read_operations import list_operations
from projections.read_servers import count_live_instances_on_server, get_server, list_servers
from projections.run import run_projections
from projections.servers import ServerView
from projections.timetravel import instance_as_of
from projections.waiting import wait_for_position

__all__ = [
    "AuditEntry",
    "AuditFilter",
    "DomainView",
    "HealthScoreView",
    "HealthView",
    "InstanceView",
    "InvalidCursor",
    "OperationStepView",
    "OperationView",
    "ServerView",
    "count_live_instances_on_server",
    "get_health",
    "get_health_score",
    "get_instance",
    "get_server",
    "instance_as_of",
    "list_instances",
    "list_operations",
    "list_servers",
    "query_audit",
    "run_projections",
    "search_audit",
    "wait_for_position",
]
