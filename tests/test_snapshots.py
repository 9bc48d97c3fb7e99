"""A server's ports are folded once per process and then only from what was appended since."""

from __future__ import annotations

from commands.reservation import PortsState
from commands.runner import Loaded
from commands.snapshots import Snapshots


def test_a_snapshot_is_kept_only_if_newer():
    snapshots = Snapshots[PortsState]()
    snapshots.put("ports-a", Loaded(PortsState({"i": (20000, 20001)}), 3))
    snapshots.put("ports-a", Loaded(PortsState(), 2))

    found = snapshots.get("ports-a")
    assert found is not None
    assert (found.version, found.state.held) == (3, {"i": (20000, 20001)})


def test_the_least_recently_used_snapshot_goes_first():
    snapshots = Snapshots[PortsState](capacity=2)
    snapshots.put("ports-a", Loaded(PortsState(), 1))
    snapshots.put("ports-b", Loaded(PortsState(), 1))
    snapshots.get("ports-a")
    snapshots.put("ports-c", Loaded(PortsState(), 1))

    assert snapshots.get("ports-b") is None
    assert snapshots.get("ports-a") is not None
