"""Typed failures of talking to a server over SSH. No message ever carries a key or password."""

from __future__ import annotations


class SshError(Exception):
    """Talking to a server over SSH failed."""


class ServerUnreachable(SshError):
    """The server could not be reached: refused, unresolvable, silent, or the connection dropped."""


class AddressRefused(SshError):
    """The server's address is one servers may not have (workers/ssh/network_policy.py): nothing
    was dialled. Not worth a retry: the address stays what it is."""


class AuthenticationFailed(SshError):
    """The server refused our credentials, or our private key cannot be read."""


class HostKeyChanged(SshError):
    """The server presented a host key other than the pinned one: nothing was sent to it."""

    def __init__(self, address: str, expected_fingerprint: str, seen_fingerprint: str | None):
        self.address = address
        self.expected_fingerprint = expected_fingerprint
        self.seen_fingerprint = seen_fingerprint
        seen = f"it presented {seen_fingerprint}" if seen_fingerprint else "its key was not seen"
        super().__init__(
            f"host key of {address} changed: expected {expected_fingerprint}, {seen}; "
            "nothing was run. If the server was reinstalled on purpose, pin its new key."
        )


class CommandTimeout(SshError):
    """A command ran longer than its timeout and was killed."""

    def __init__(self, address: str, command: str, timeout: float, stdout: str, stderr: str):
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        shown = command if len(command) <= 120 else command[:117] + "..."
        super().__init__(f"command on {address} did not finish within {timeout:g}s: {shown}")


class OutputTooLarge(SshError):
    """A command wrote more than its output limit; it was stopped, what it wrote dropped."""

    def __init__(self, address: str, command: str, limit: int):
        self.limit = limit
        shown = command if len(command) <= 120 else command[:117] + "..."
        super().__init__(f"command on {address} stopped: output over {limit} bytes: {shown}")


class TransferFailed(SshError):
    """An SFTP upload failed; the target file was left as it was."""
