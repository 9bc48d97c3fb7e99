"""A multi-step script's report read as it comes: each step's line in turn, however the
lines are cut into chunks, and a report that is not the script's refused."""

from __future__ import annotations

import base64
import subprocess

import pytest

from workers.server.step_report import (
    ReportReader,
    ScriptedStep,
    UnreadableReport,
    new_nonce,
    steps_command,
)


def _line(nonce: str, index: int, status: int, out: bytes = b"") -> bytes:
    encoded = base64.b64encode(out).decode()
    return f"{nonce} {index} {status} 12 {encoded} \n".encode()


def test_the_script_reports_each_step_and_the_reader_reads_them_all() -> None:
    nonce = new_nonce()
    steps = [ScriptedStep("echo one", 10), ScriptedStep("echo two >&2; exit 3", 10)]
    output = subprocess.run(
        ["sh", "-c", steps_command(steps, nonce)], capture_output=True, check=False
    ).stdout
    reader = ReportReader(nonce, len(steps))

    results = reader.feed(output)

    assert [(r.exit_status, r.stdout, r.stderr) for r in results] == [
        (0, "one\n", ""),
        (3, "", "two\n"),
    ]


def test_lines_of_several_steps_in_one_chunk_are_each_read_in_turn() -> None:
    """A worker that waited (on the database, say) gets several steps' lines at once."""
    nonce = new_nonce()
    reader = ReportReader(nonce, 4)
    lines = b"".join(_line(nonce, i, 0, f"step {i}".encode()) for i in range(4))

    first = reader.feed(lines[:5])
    rest = reader.feed(lines[5:])

    assert first == []
    assert [r.stdout for r in rest] == ["step 0", "step 1", "step 2", "step 3"]


def test_a_line_out_of_turn_is_refused() -> None:
    nonce = new_nonce()
    reader = ReportReader(nonce, 3)

    with pytest.raises(UnreadableReport, match="step #1 reported as #2"):
        reader.feed(_line(nonce, 0, 0) + _line(nonce, 2, 0))
