"""How a worker reaches a server, from its decider's state (commands.server_state): the SSH
credentials opened by the Vault, and the host key every connection must see."""

from __future__ import annotations

from typing import assert_never

import msgspec

from commands.runner import folder
from commands.server_state import (
    Absent,
    Active,
    Deleted,
    InError,
    Pending,
    Pinned,
    ServerProfile,
    ServerState,
    Unpinned,
    Unreachable,
    evolve,
    initial_state,
)
from events.secrets import MASK, Vault
from events.server import server_stream
from events.store import EventStore
from workers.ssh.connection import ServerConnectionInfo

fold_server = folder(initial_state(), evolve)


class ServerSecrets(msgspec.Struct, frozen=True):
    private_key: str | None
    password: str | None

    def values(self) -> list[str | None]:
        return [self.private_key, self.password]

    def __repr__(self) -> str:
        return "ServerSecrets(…)"


NO_SECRETS = ServerSecrets(None, None)


async def load_server(store: EventStore, server_id: str) -> ServerState:
    """The server's state as its decider folds it (whichever organization asks: a worker acts
    for the event that woke it)."""
    return fold_server((await store.load_stream(server_stream(server_id))).events)


def profile_of(state: ServerState) -> ServerProfile:
    """The profile of a server registered once (deleted since, too). LookupError otherwise."""
    match state:
        case Absent():
            raise LookupError("the server stream has no ServerRegistered")
        case Pending() | Active() | Unreachable() | InError() | Deleted():
            return state.profile
        case _:
            assert_never(state)


def pinned_host_key(profile: ServerProfile) -> str | None:
    """The key every connection must see: pinned by a validation, or given at registration;
    None until then (the first validation trusts what it sees)."""
    match profile.host_key:
        case Pinned(host_key=host_key):
            return host_key
        case Unpinned(given=given):
            return given
        case _:
            assert_never(profile.host_key)


async def open_server_secrets(vault: Vault, profile: ServerProfile) -> ServerSecrets:
    stream_id = server_stream(profile.server_id)
    key, password = profile.ssh_private_key, profile.ssh_password
    return ServerSecrets(
        private_key=None if key is None else await vault.open(stream_id, key),
        password=None if password is None else await vault.open(stream_id, password),
    )


def connection_info(
    profile: ServerProfile, secrets: ServerSecrets, connect_timeout: float
) -> ServerConnectionInfo:
    if MASK in secrets.values():
        # The runner would report a refused key; the truth is that we cannot read ours.
        raise ValueError("the server's credentials were forgotten (its data key is gone)")
    return ServerConnectionInfo(
        server_id=profile.server_id,
        host=profile.host,
        port=profile.port,
        user=profile.ssh_user,
        auth_method=profile.auth_method,
        private_key=secrets.private_key,
        password=secrets.password,
        pinned_host_key=pinned_host_key(profile),
        connect_timeout=connect_timeout,
        max_ssh_sessions=profile.max_ssh_sessions,
    )
