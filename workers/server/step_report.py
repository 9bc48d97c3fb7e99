"""Several steps in one command, and the report it prints: one line per step that ran, with
its exit status, how long it took and the end of what it printed, so the saga records each
step's outcome as if it had run alone (workers/sagas/remote_steps.py).

Server output is hostile. A step's output goes to files on the server, not to the report:
each report line carries the last REPORTED_BYTES of its stdout and of its stderr, base64
encoded (no newline, no marker can come from the step), after a marker holding a nonce.
Lines without the marker are ignored; a malformed one makes the whole report unreadable.
The report as a whole stays under the runner's output limit (the runner enforces it).
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Sequence
from typing import Final, NamedTuple

from workers.server.payload import WORK
from workers.server.shell import cmd
from workers.ssh.runner import KILL_GRACE_SECONDS, TIMEOUT_STATUSES, CommandResult

# More than the 2,000 characters an operation records of an output (even at four bytes a
# character), so that masking a secret happens on text whose cut is far before the excerpt.
REPORTED_BYTES: Final = 12 * 1024
_FIELDS: Final = 6  # marker, index, status, milliseconds, stdout, stderr


class ScriptedStep(NamedTuple):
    command: str
    time_limit: float  # this step's own, enforced on the server by `timeout`


class UnreadableReport(Exception):
    """The server's report is not what the script prints."""


def steps_command(steps: Sequence[ScriptedStep], nonce: str) -> str:
    """Run `steps` in order, each under its time limit, until one fails; report each.
    Needs `$work` (workers/server/payload.py) for the steps' output files. Reporting
    fails once nobody reads the report (the worker that ran the command died): the script
    then stops, rather than run later steps unobserved."""
    parts = []
    for index, step in enumerate(steps):
        run = cmd("timeout", "-k", KILL_GRACE_SECONDS, f"{step.time_limit:g}", "sh", "-c")
        parts.append(
            "; ".join(
                [
                    "s=$(date +%s%N)",
                    f"{run} {cmd(step.command)} >{WORK}/out 2>{WORK}/err </dev/null",
                    "st=$?",
                    "e=$(date +%s%N)",
                    f"o=$(tail -c {REPORTED_BYTES} {WORK}/out | base64 | tr -d '\\n')",
                    f"r=$(tail -c {REPORTED_BYTES} {WORK}/err | base64 | tr -d '\\n')",
                    cmd("printf", "%s %s %s %s %s %s\\n", nonce, index)
                    + ' "$st" "$(( (e - s) / 1000000 ))" "$o" "$r" || exit 141',
                    'if [ "$st" -ne 0 ]; then exit "$st"; fi',
                ]
            )
        )
    return "; ".join(parts)


def new_nonce() -> str:
    return f"@odoofleet-step-{secrets.token_hex(8)}"


class ReportReader:
    """The report read as it comes: each step's result once its whole line is in."""

    def __init__(self, nonce: str, steps: int) -> None:
        self._marker = (nonce + " ").encode()
        self._steps = steps
        self._pending = bytearray()
        self.results: list[CommandResult] = []

    def feed(self, chunk: bytes) -> list[CommandResult]:
        """The results whose lines `chunk` completed."""
        self._pending += chunk
        *lines, rest = self._pending.split(b"\n")
        self._pending = bytearray(rest)
        new: list[CommandResult] = []
        for line in lines:
            if line.startswith(self._marker):
                # One at a time: a chunk may end several steps (a worker that waited on the
                # database read them together), and each line's number is checked in turn.
                self.results.append(self._result(line))
                new.append(self.results[-1])
        return new

    def _result(self, line: bytes | bytearray) -> CommandResult:
        index = len(self.results)
        fields = line.split(b" ")
        if len(fields) != _FIELDS or index >= self._steps:
            raise UnreadableReport(f"unexpected report line #{index}")
        _, reported, status, duration, out, err = fields
        try:
            if int(reported) != index:
                shown = bytes(reported[:20]).decode("ascii", "replace")
                raise UnreadableReport(f"step #{index} reported as #{shown}")
            return CommandResult(
                exit_status=int(status),
                stdout=_decoded(out),
                stderr=_decoded(err),
                duration_ms=max(0, int(duration)),
            )
        except (ValueError, binascii.Error) as e:
            raise UnreadableReport(f"report line #{index}: {e}") from e


def timed_out(result: CommandResult, step: ScriptedStep) -> bool:
    return result.exit_status in TIMEOUT_STATUSES and result.duration_ms >= step.time_limit * 1000


def _decoded(field: bytes | bytearray) -> str:
    return binascii.a2b_base64(field, strict_mode=True).decode("utf-8", "replace")
