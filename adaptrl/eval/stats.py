"""Aggregation with confidence intervals (host-side numpy)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# Two-sided 97.5% quantiles of Student's t for small degrees of freedom; normal beyond 30.
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042,
}  # fmt: skip


def t_quantile_975(dof: int) -> float:
    """Two-sided 95% critical value of Student's t with ``dof`` degrees of freedom."""
    if dof < 1:
        return math.nan
    return _T975.get(dof, 1.96)


@dataclasses.dataclass(frozen=True)
class MeanCI:
    """Mean and half-width of a two-sided 95% confidence interval over ``n`` samples."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def __str__(self) -> str:
        if math.isnan(self.half_width):
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} ± {self.half_width:.3f}"


def mean_ci(samples) -> MeanCI:
    """Mean and 95% t-interval of independent samples (NaN half-width for n < 2)."""
    x = np.asarray(samples, np.float64).ravel()
    n = x.size
    if n == 0:
        return MeanCI(math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return MeanCI(mean, math.nan, n)
    sem = float(x.std(ddof=1) / math.sqrt(n))
    return MeanCI(mean, t_quantile_975(n - 1) * sem, n)


def seed_task_ci(values, groups=None) -> MeanCI:
    """Aggregate a (seeds, tasks) array of per-trial values.

    ``groups[i]`` names the independently *trained* agent behind row ``i`` (rows that only differ
    by evaluation seed share a group). With several groups the unit of replication is the trained
    agent: average each group over its rows and tasks, then a t-interval across groups (tasks seen
    by one agent say nothing about training variance). With one group (one agent, any number of
    evaluation seeds) every trial is an independent sample and the interval is over all of them.
    """
    v = np.asarray(values, np.float64)
    if v.ndim != 2:
        raise ValueError(f"expected a (seeds, tasks) array, got shape {v.shape}")
    groups = np.zeros(v.shape[0], int) if groups is None else np.asarray(groups)
    if groups.shape != (v.shape[0],):
        raise ValueError(f"groups must have one entry per row ({v.shape[0]}), got {groups.shape}")
    ids = np.unique(groups)
    if ids.size > 1:
        return mean_ci([v[groups == g].mean() for g in ids])
    return mean_ci(v)
