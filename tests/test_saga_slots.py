"""The advisory locks of operations, across sessions as across worker processes: one
operation per instance, at most maxSshSessions SSH sessions per server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from workers.runtime.slots import LockTimeout, OperationLocks


async def test_a_second_operation_on_an_instance_waits_for_the_first(database_url: str) -> None:
    async with OperationLocks(database_url) as first, OperationLocks(database_url) as second:
        await first.hold("instance i-1", max_wait=1)

        with pytest.raises(LockTimeout):
            await second.hold("instance i-1", max_wait=0.2)
        await second.hold("instance i-2", max_wait=0.2)  # another instance is free

    async with OperationLocks(database_url) as third:
        await third.hold("instance i-1", max_wait=0.2)  # the first session ended: released


async def test_sessions_of_one_server_are_capped_across_operations(database_url: str) -> None:
    inside, most = 0, 0

    async def command(locks: OperationLocks) -> None:
        nonlocal inside, most
        async with locks.session("s-1", slots=2, max_wait=10):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.2)  # the "command" holding its session
            inside -= 1

    async with contextlib.AsyncExitStack() as stack:
        operations = [
            await stack.enter_async_context(OperationLocks(database_url, poll_interval=0.02))
            for _ in range(5)
        ]
        await asyncio.gather(*(command(locks) for locks in operations))

    assert most == 2
