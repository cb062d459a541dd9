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
    """Append ``text`` and a blank line to ``out`` (created if missing); never rewrites it."""
    with Path(out).open("a") as f:
        f.write(text.rstrip("\n") + "\n\n")
