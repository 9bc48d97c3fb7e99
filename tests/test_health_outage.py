"""What one health visit concludes about its server, and how the server's decider records it:
given the read model's status and the visit, when decided, then a command (or none) — no
sshd, no database."""

from __future__ import annotations

import pytest
from builders import NOW, SERVER, registered_server

from commands.runner import folder
from commands.server import MarkServerReachable, MarkServerUnreachable, decide
from commands.server_state import Active, Unreachable, evolve, initial_state
from events.registry import DomainEvent
from events.server import HostKeyPinned, ServerReachable, ServerUnreachable, ServerValidated
from workers.health.servers import outage_command

fold = folder(initial_state(), evolve)


def active() -> list[DomainEvent]:
    return [
        *registered_server(),
        HostKeyPinned(
            server_id=SERVER, host_key="ssh-ed25519 AAAA", fingerprint="f", trust="first-use"
        ),
        ServerValidated(
            server_id=SERVER,
            operation_id="op-validate",
            os_name="Debian",
            os_version="12",
            cpu_cores=2,
            ram_total_bytes=1,
            disk_free_bytes=1,
            docker_version="27.3.1",
            compose_version="2.29.7",
            validated_at=NOW,
        ),
    ]


def test_an_active_server_that_does_not_answer_is_marked_unreachable() -> None:
    command = outage_command("active", True, "server unreachable: refused")

    assert command == MarkServerUnreachable(message="server unreachable: refused")
    assert decide(command, fold(active()), NOW) == [
        ServerUnreachable(server_id=SERVER, message="server unreachable: refused", observed_at=NOW)
    ]


def test_an_unreachable_server_that_answers_is_marked_reachable() -> None:
    lost = [*active(), ServerUnreachable(server_id=SERVER, message="x", observed_at=NOW)]
    command = outage_command("unreachable", False, "")

    assert command == MarkServerReachable()
    events = decide(command, fold(lost), NOW)
    assert events == [ServerReachable(server_id=SERVER, observed_at=NOW)]
    assert isinstance(fold([*lost, *events]), Active)


@pytest.mark.parametrize(("status", "unreachable"), [("active", False), ("unreachable", True)])
def test_a_visit_that_agrees_with_the_read_model_concludes_nothing(
    status: str, unreachable: bool
) -> None:
    assert outage_command(status, unreachable, "whatever") is None


def test_a_visit_that_fails_for_another_reason_than_reachability_concludes_nothing() -> None:
    # `cannot observe the server` (credentials, unreadable output) is not an outage.
    assert outage_command("active", False, "health command failed") is None


def test_a_read_model_that_lags_the_stream_makes_the_decider_record_nothing() -> None:
    """The read model still says active, but the stream has the outage already (another
    observer for a moment): the command is given, and decided away."""
    lost = [*active(), ServerUnreachable(server_id=SERVER, message="x", observed_at=NOW)]
    command = outage_command("active", True, "server unreachable: refused")

    assert command is not None
    assert isinstance(fold(lost), Unreachable)
    assert decide(command, fold(lost), NOW) == []
