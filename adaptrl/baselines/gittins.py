"""Gittins indices of Beta-Bernoulli arms (Gittins 1979), computed by calibration.

The index of an arm whose posterior is ``Beta(a, b)`` under discount ``gamma`` is the per-step
retirement reward ``lam`` at which a gambler is indifferent between retiring for ever (worth
``lam / (1 - gamma)``) and pulling the arm once more, then continuing optimally. For a fixed
``lam``, one backward dynamic programme over the triangle of posteriors gives the continuation
value of *every* state at once, so instead of bisecting ``lam`` state by state we evaluate a
shared grid of ``lam`` values in one vectorised sweep (numpy, shape ``(grid, states_in_layer)``)
and locate, per state, where ``continue - retire`` crosses zero by linear interpolation between
grid points. The crossing is unique because ``continue - retire`` is decreasing in ``lam``.

The infinite posterior tree is truncated at total count ``depth``; there the arm is valued as if
its posterior were frozen (``max(lam, p) / (1 - gamma)``), a slight under-estimate of the value of
continuing whose effect is damped by ``gamma ** (depth - n)``.

Tables are indexed by observed counts under a ``Beta(prior_a, prior_b)`` prior:
``table[s, f]`` is the index after ``s`` successes and ``f`` failures (``s + f <= horizon``).
They are cached in memory and on disk (``$ADAPTRL_CACHE_DIR`` or ``~/.cache/adaptrl``).
"""

from __future__ import annotations

import functools
import math
import os
import pathlib
import tempfile

import numpy as np

_VERSION = 1  # bump when the computation changes, to invalidate disk caches


def _cache_dir() -> pathlib.Path:
    root = os.environ.get("ADAPTRL_CACHE_DIR") or os.path.join("~", ".cache", "adaptrl")
    return pathlib.Path(root).expanduser() / "gittins"


def default_depth(discount: float, horizon: int, tol: float = 1e-4, max_extra: int = 2000) -> int:
    """Truncation depth: ``horizon`` plus enough steps for ``discount ** extra <= tol``."""
    extra = math.ceil(math.log(tol) / math.log(discount)) if discount > 0 else 1
    return int(horizon + max(1, min(extra, max_extra)))


def compute_gittins_table(
    discount: float,
    horizon: int,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    grid_size: int = 256,
    depth: int | None = None,
) -> np.ndarray:
    """Gittins indices for every count pair with ``s + f <= horizon``.

    Args:
      discount: ``gamma`` in [0, 1).
      horizon: largest total count tabulated (``n`` pulls need ``horizon >= n - 1``).
      prior: Beta prior ``(a0, b0)``; the posterior after ``s``/``f`` is ``Beta(a0+s, b0+f)``.
      grid_size: number of retirement rewards in the calibration grid on [0, 1].
      depth: truncation depth of the posterior tree (default ``default_depth``).

    Returns:
      ``(horizon + 1, horizon + 1)`` float64 array; entries with ``s + f > horizon`` are NaN.
    """
    if not 0.0 <= discount < 1.0:
        raise ValueError(f"discount must be in [0, 1), got {discount}")
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    a0, b0 = prior
    table = np.full((horizon + 1, horizon + 1), np.nan)
    if discount == 0.0:
        # A myopic gambler compares lam with the immediate expected reward only.
        s, f = np.meshgrid(np.arange(horizon + 1), np.arange(horizon + 1), indexing="ij")
        mean = (a0 + s) / (a0 + b0 + s + f)
        return np.where(s + f <= horizon, mean, np.nan)

    depth = default_depth(discount, horizon) if depth is None else max(depth, horizon + 1)
    lam = np.linspace(0.0, 1.0, grid_size)[:, None]  # (G, 1)
    retire = lam / (1.0 - discount)  # (G, 1)

    def mean_of_layer(n: int) -> np.ndarray:
        s = np.arange(n + 1)
        return (a0 + s) / (a0 + b0 + n)  # (n + 1,) posterior mean of each state in layer n

    p = mean_of_layer(depth)
    value = np.maximum(retire, p / (1.0 - discount))  # (G, depth + 1): frozen-posterior value
    for n in range(depth - 1, -1, -1):
        p = mean_of_layer(n)
        # Pull once: reward p, then success -> (s + 1, f), failure -> (s, f + 1).
        cont = p + discount * (p * value[:, 1:] + (1.0 - p) * value[:, :-1])  # (G, n + 1)
        if n <= horizon:
            table[np.arange(n + 1), n - np.arange(n + 1)] = _crossing(lam[:, 0], cont - retire)
        value = np.maximum(retire, cont)
    return table


def _crossing(lam: np.ndarray, diff: np.ndarray) -> np.ndarray:
    """Per column, the ``lam`` where the decreasing ``diff`` (G, m) crosses zero (linear interp)."""
    positive = diff > 0.0
    # Index of the last grid point where continuing is strictly better (-1 if none).
    last = positive.sum(axis=0) - 1
    g = lam.shape[0]
    lo = np.clip(last, 0, g - 2)
    cols = np.arange(diff.shape[1])
    d_lo, d_hi = diff[lo, cols], diff[lo + 1, cols]
    frac = np.where(d_lo != d_hi, d_lo / np.where(d_lo != d_hi, d_lo - d_hi, 1.0), 0.0)
    out = lam[lo] + np.clip(frac, 0.0, 1.0) * (lam[lo + 1] - lam[lo])
    return np.where(last < 0, lam[0], out)


@functools.lru_cache(maxsize=32)
def gittins_table(
    discount: float, horizon: int, *, prior: tuple[float, float] = (1.0, 1.0)
) -> np.ndarray:
    """Cached ``compute_gittins_table`` (memory, then disk). Read-only ``(H + 1, H + 1)`` array."""
    name = f"v{_VERSION}_g{discount!r}_h{horizon}_a{prior[0]!r}_b{prior[1]!r}.npy"
    path = _cache_dir() / name
    table = None
    if path.exists():
        try:
            table = np.load(path)
        except (OSError, ValueError):
            table = None  # a corrupt or partial file: recompute
    if table is None or table.shape != (horizon + 1, horizon + 1):
        table = compute_gittins_table(discount, horizon, prior=prior)
        _save_atomic(path, table)
    table.setflags(write=False)
    return table


def _save_atomic(path: pathlib.Path, array: np.ndarray) -> None:
    """Write via a temporary file and rename, so concurrent readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as fh:
            np.save(fh, array)
        os.replace(fh.name, path)
    except OSError:
        pass  # caching is an optimisation; a read-only home must not break the agent
