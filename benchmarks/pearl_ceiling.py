"""How much success posterior-sampling exploration *can* reach on PEARL's sparse point robot.

    python benchmarks/pearl_ceiling.py [--seeds 50] [--no-write]

Meta-tests the two exact-posterior goal-search references of ``adaptrl.baselines.goal_search``
(``adaptrl train goal-search --env point-nav-sparse [--goal-search.strategy sweep]``) on the
benchmark's 20 held-out goals with the same 4-episode trials as ``benchmarks/pearl_point.py``:

- posterior sampling over goals with the exact posterior: what a perfectly trained PEARL scores,
  since PEARL explores by acting on one z ~ q(z | context) per trajectory;
- a sweeping explorer with the same posterior: what better exploration reaches.

Appends a section to ``docs/results/pearl_ceiling.md``; prints the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

import adaptrl
from adaptrl.baselines.goal_search import goal_search
from adaptrl.eval.protocol import meta_test

sys.path.insert(0, str(Path(__file__).parent))
from _report import append_section, cpu_model  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "pearl_ceiling.md"
EPISODES = 4


def measure(seeds: int) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    bench = adaptrl.make("point-nav-sparse")
    rows = []
    for strategy in ("posterior-sampling", "sweep"):
        t = time.perf_counter()
        r = meta_test(bench, goal_search(bench, strategy), seeds=list(range(seeds)),
                      num_episodes=EPISODES)  # fmt: skip
        s = r.success.reshape(-1, EPISODES).astype(np.float64)
        n = s.shape[0]
        ci = 1.96 * s.std(0, ddof=1) / np.sqrt(n)
        rows.append((strategy, s.mean(0), ci, time.perf_counter() - t))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=50, help="evaluation seeds (x 20 held-out goals)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    rows = measure(args.seeds)
    lines = [
        f"## Exploration ceilings on point-nav-sparse ({time.strftime('%Y-%m-%d %H:%M')})", "",
        f"Command: `python benchmarks/pearl_ceiling.py --seeds {args.seeds}`; {args.seeds} "
        f"evaluation seeds x 20 held-out goals = {20 * args.seeds} trials of {EPISODES} episodes "
        f"(20 steps each). Machine: {cpu_model()}, jax {jax.__version__}. ± = 95% normal "
        "interval over trials.", "",
        "| agent | success in episode 1 / 2 / 3 / 4 | wall-clock |",
        "|---|---|---|",
    ]  # fmt: skip
    for strategy, mean, ci, wall in rows:
        curve = " / ".join(f"{m:.3f} ± {c:.3f}" for m, c in zip(mean, ci, strict=True))
        lines.append(f"| goal search, {strategy} (exact posterior) | {curve} | {wall:.1f} s |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        append_section(OUT, text)
        print(f"appended to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
