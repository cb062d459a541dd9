"""Metrics to CSV and TensorBoard, resumable without duplicate or lost rows."""

from __future__ import annotations

import csv
import math
from pathlib import Path

METRICS_CSV = "metrics.csv"


def _last_logged_iteration(path: Path) -> int:
    if not path.exists():
        return -1
    last = -1
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                last = max(last, int(row["iteration"]))
            except (KeyError, TypeError, ValueError):
                continue  # a torn last line from a crash: ignore it
    return last


class MetricLogger:
    """Append per-iteration scalars to ``run_dir/metrics.csv`` and TensorBoard events.

    On resume, iterations already in the CSV are not written again (a resumed run recomputes
    them bit-for-bit, so the existing rows are kept as they are).
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_CSV
        self.last_iteration = _last_logged_iteration(self.path)
        self._fields: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                self._fields = next(csv.reader(f), None)
            self._repair_torn_tail()
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:  # tensorboardX is a dependency, but keep logging if it is absent
                self._tb = None

    def _repair_torn_tail(self) -> None:
        # A crash mid-write can leave a last line without newline; terminate it so appends stay
        # parseable (the torn row is skipped by the reader above).
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("ab") as f:
                f.write(b"\n")

    def log(self, iteration: int, metrics: dict[str, float]) -> None:
        if iteration <= self.last_iteration:
            return
        row = {"iteration": iteration, **{k: float(v) for k, v in metrics.items()}}
        if self._fields is None:
            self._fields = list(row)
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self._fields)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(k, math.nan)) for k in self._fields])
            f.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k != "iteration":
                    self._tb.add_scalar(k, v, iteration)
        self.last_iteration = iteration

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()


def _fmt(v) -> str:
    return repr(float(v)) if not isinstance(v, int) else str(v)


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """All rows of ``metrics.csv`` as floats (torn rows skipped)."""
    path = Path(run_dir) / METRICS_CSV
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows.append({k: float(v) for k, v in row.items()})
            except (TypeError, ValueError):
                continue
    return rows
