"""Shared pieces of the benchmark reports: the machine line, and appending a section to a results
file without touching what earlier runs wrote there."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def append_section(out: str | Path, text: str) -> None:
    """Append ``text`` and a blank line to ``out`` (created if missing); never rewrites it.

    A blank line is also put before ``text`` when the file does not end with one (a hand-written
    reading appended to it, say), so the new section's heading renders as a heading.
    """
    path = Path(out)
    tail = path.read_bytes()[-2:] if path.exists() else b""  # results files are small
    newlines = len(tail) - len(tail.rstrip(b"\n"))
    lead = "\n" * (2 - newlines) if tail else ""
    with path.open("a") as f:
        f.write(lead + text.rstrip("\n") + "\n\n")
