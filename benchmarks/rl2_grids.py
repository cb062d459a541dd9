"""RL² on the grid tasks: VariBAD's 5x5 gridworld and the read-the-sign grid.

For each env: meta-train RL² (several seeds vmapped in one process) through ``adaptrl.train``,
meta-test on the held-out tasks beside the random, oracle and task-agnostic references, and report

- per-episode returns (the adaptation curve: episodes 2.. should beat episode 1), the trial total;
- success rate per episode and mean steps to the goal in successful episodes (the sign task: an
  agent that reads the sign succeeds every episode and needs more steps in episode 1 than later;
  the task-agnostic agent ignores the sign and succeeds about half the time).

Appends a section to ``docs/results/rl2.md``; run directories go under ``runs/benchmarks/``.

    python benchmarks/rl2_grids.py --envs grid-varibad sign-grid --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

from adaptrl.algos import rl2
from adaptrl.eval.report import load_results
from adaptrl.train import RunConfig, train

# (iterations, RL2Config overrides) per env.
SETTINGS: dict[str, tuple[int, dict]] = {
    "grid-varibad": (600, {"gamma": 0.95, "learning_rate": 1e-3}),
    "sign-grid": (600, {"gamma": 0.95, "learning_rate": 1e-3}),
}


def _cell(values: np.ndarray) -> str:
    return f"{values.mean():.2f}"


def run_env(env: str, seeds: int, iterations: int | None, out_root: Path) -> dict:
    default_iters, overrides = SETTINGS.get(env, (600, {}))
    iters = iterations or default_iters
    config = dataclasses.replace(rl2.RL2Config(), **overrides)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = out_root / f"rl2_{env}_{stamp}"
    run = RunConfig(env=env, iterations=iters, num_seeds=seeds, run_dir=str(run_dir),
                    eval_seeds=2, progress=False, log_every=max(1, iters // 20))  # fmt: skip
    t0 = time.perf_counter()
    train("rl2", run, config)
    wall = time.perf_counter() - t0
    return {"env": env, "iterations": iters, "seeds": seeds, "overrides": overrides,
            "wall_s": wall, "run_dir": str(run_dir), "results": load_results(run_dir / "results")}


def summarize(r: dict) -> list[str]:
    lines = [f"### {r['env']}", "",
             f"{r['iterations']} updates, {r['seeds']} training seeds, config changes "
             f"{r['overrides'] or 'none'}; wall-clock {r['wall_s']:.0f} s (train + meta-test). "
             f"Run directory `{r['run_dir']}`.", ""]  # fmt: skip
    results = r["results"]
    n_ep = results[0].num_episodes
    head = " | ".join(f"ep {e + 1}" for e in range(n_ep))
    lines += [f"| agent | {head} | trial total | success per episode | steps to goal per episode |",
              "|---|" + "---:|" * n_ep + "---:|---|---|"]  # fmt: skip
    for res in results:
        curve = res.curve()
        total = res._ci(res.trial_returns)
        succ = res.success.mean(axis=(0, 1))
        steps = []
        for e in range(n_ep):
            ok = res.success[..., e].astype(bool)
            first = res.first_success_step[..., e][ok]
            steps.append(f"{first.mean() + 1:.1f}" if ok.any() else "–")
        lines.append(
            f"| {res.agent} | " + " | ".join(f"{c.mean:.2f} ± {c.half_width:.2f}" for c in curve)
            + f" | {total.mean:.2f} ± {total.half_width:.2f} | "
            + ", ".join(f"{s:.2f}" for s in succ) + " | " + ", ".join(steps) + " |"
        )
    lines.append("")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=list(SETTINGS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--runs", default="runs/benchmarks")
    p.add_argument("--out", default="docs/results/rl2.md")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    rows = [run_env(env, a.seeds, a.iterations, Path(a.runs)) for env in a.envs]
    lines = [f"## Grid tasks, run of {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Command: `python benchmarks/rl2_grids.py {' '.join(sys.argv[1:])}`  ",
             f"Machine: {platform.machine()}, 2-core CPU, no GPU; Python "
             f"{platform.python_version()}, jax {jax.__version__}. Held-out tasks of each "
             "benchmark (split seed 0), 2 evaluation trials per task and trained seed; mean ± 95% "
             "CI (t-interval across trained seeds for RL², across trials for references). "
             "Steps to goal: mean step of first success, over successful episodes.", ""]  # fmt: skip
    for r in rows:
        lines += summarize(r)
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_write:
        with Path(a.out).open("a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
