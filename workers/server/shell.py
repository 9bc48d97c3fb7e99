"""Shell command lines built only from quoted words, so no value can become a command."""

from __future__ import annotations

import shlex


def cmd(*words: str | int) -> str:
    """One command line: every word is quoted, so each reaches the program as one argv element."""
    if not words:
        raise ValueError("a command needs at least one word")
    return " ".join(shlex.quote(str(word)) for word in words)


def script(*steps: str) -> str:
    """Steps run in order; the first that fails stops the script with its exit status."""
    return " && ".join(steps)


def sequence(*steps: str) -> str:
    """Steps run in order whatever each one's status; the last one's status is the script's."""
    return "; ".join(steps)


def if_then(condition: str, then: str, otherwise: str | None = None) -> str:
    """`if condition; then …; [else …;] fi`, with the exit status of the branch that ran."""
    tail = f"; else {otherwise}" if otherwise is not None else ""
    return f"if {condition}; then {then}{tail}; fi"


def quiet(command: str) -> str:
    """The command with its standard output discarded; errors still reach stderr."""
    return f"{command} >/dev/null"


def silent(command: str) -> str:
    """The command with its output discarded: used for existence checks."""
    return f"{command} >/dev/null 2>&1"


def fail(message: str) -> str:
    """Print a message on stderr and exit non-zero: the script's failure explains itself."""
    return "{ " + cmd("printf", "%s\\n", message) + " >&2; exit 1; }"


def locked(lock_path: str, body: str, wait_seconds: int = 60) -> str:
    """Run `body` under `flock` on the instance's lock file: one operation per instance at a time.

    flock runs the body through `sh -c`, passed as a single quoted argument.
    """
    return cmd("flock", "-w", wait_seconds, lock_path, "sh", "-c", body)
