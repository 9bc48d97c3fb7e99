"""Each benchmark owns one section of bench/README.md, between its own markers."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).with_name("README.md")


def write_section(key: str, heading: str, body: str) -> None:
    """Replace the text between `<!-- key:begin -->` and `<!-- key:end -->` with `body`,
    adding the section under `## heading` at the end if it is not there yet."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if begin not in text:
        text = f"{text.rstrip()}\n\n## {heading}\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    README.write_text(f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}")
