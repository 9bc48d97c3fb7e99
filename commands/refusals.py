"""Typed refusals: requests the current state does not allow (the API maps each to a 4xx)."""

from __future__ import annotations


class Refusal(Exception):
    """A command refused by a decider or the command runner; nothing was appended."""


class InstanceNotFound(Refusal):
    """No instance of the caller's organization has this id (or it was removed)."""

    def __init__(self) -> None:
        super().__init__("instance not found")


class ServerNotFound(Refusal):
    """No server of the caller's organization has this id (or it was deleted)."""

    def __init__(self) -> None:
        super().__init__("server not found")


class ActionNotAllowed(Refusal):
    def __init__(self, action: str, status: str) -> None:
        self.action = action
        self.status = status
        super().__init__(f"cannot {action} an instance that is {status}")


class RemovalNotFailed(Refusal):
    """A forced removal was asked for an instance whose removal has not failed."""

    def __init__(self, status: str) -> None:
        self.status = status
        if status == "removing":
            reason = "a removal is running; force it only once its teardown has failed"
        else:
            reason = f"the instance is {status}, not in a failed removal; DELETE it without force"
        super().__init__(reason)


class AdminPasswordUnknown(Refusal):
    """The instance was created before odoofleet set an admin user password."""

    def __init__(self) -> None:
        super().__init__(
            "odoofleet never set this instance's admin password (it was created before it did);"
            " rotate the admin credentials to set one"
        )


class SlugTaken(Refusal):
    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(f"slug {slug!r} is already used in this organization")


class ServerNotUsable(Refusal):
    """An instance cannot be placed on this server (unknown, in error, or deleted)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ServerHasInstances(Refusal):
    def __init__(self, server_id: str, count: int) -> None:
        self.server_id = server_id
        self.count = count
        super().__init__(f"server {server_id} still hosts {count} instance(s)")


class NoFreePorts(Refusal):
    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        super().__init__(f"server {server_id} has no free host ports left")


class VersionMismatch(Refusal):
    """The client's If-Match names a version the stream is no longer at."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"expected version {expected}, the resource is at version {actual}")


class ConcurrentModification(Refusal):
    """Another write to the same stream won, and this command is not retried."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        super().__init__(f"{stream_id} was changed concurrently; retry the request")


class OutcomeOverruled(Refusal):
    """A saga's outcome that its instance no longer takes: a removal overtook the operation
    (a late result must not revive the instance), or the instance is removed already. The
    saga cancels its operation; nothing is recorded."""

    def __init__(self, operation_id: str, reason: str) -> None:
        self.operation_id = operation_id
        self.reason = reason
        super().__init__(reason)
