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

import adaptrl
from adaptrl.algos import rl2
from adaptrl.envs.grid import SignGrid
from adaptrl.eval.report import load_results
from adaptrl.rollout.trial import run_trial
from adaptrl.tasks.distribution import tree_index, tree_size
from adaptrl.train import RunConfig, _init_states, evaluate, load_run_config, train
from adaptrl.utils.overrides import parse_overrides

sys.path.insert(0, str(Path(__file__).parent))
from _report import append_section  # noqa: E402

from adaptrl.utils.checkpoint import latest_checkpoint, load_checkpoint

# (iterations, RL2Config overrides) per env.
SETTINGS: dict[str, tuple[int, dict]] = {
    "grid-varibad": (600, {"gamma": 0.95, "learning_rate": 1e-3}),
    # Sign reading is found late (~450 updates at entropy 0.05, gamma 0.99; never at 0.01/0.95).
    "sign-grid": (1000, {"gamma": 0.99, "learning_rate": 1e-3, "entropy_coef": 0.05}),
}


def _cell(values: np.ndarray) -> str:
    return f"{values.mean():.2f}"


def run_env(
    env: str, seeds: int, iterations: int | None, out_root: Path, extra: dict | None = None
) -> dict:
    default_iters, overrides = SETTINGS.get(env, (600, {}))
    overrides = {**overrides, **(extra or {})}
    iters = iterations or default_iters
    config = dataclasses.replace(rl2.RL2Config(), **overrides)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = out_root / f"rl2_{env}_{stamp}"
    run = RunConfig(env=env, iterations=iters, num_seeds=seeds, run_dir=str(run_dir),
                    eval_seeds=2, progress=False, log_every=max(1, iters // 20))  # fmt: skip
    t0 = time.perf_counter()
    train("rl2", run, config)
    return collect(run_dir, wall_s=time.perf_counter() - t0)


def collect(run_dir: Path, wall_s: float | None = None) -> dict:
    """Results of a trained grid run, plus the same agents evaluated on the meta-training tasks.

    With a small finite task set (the 5x5 grid has 21 goals, ~4 held out) the gap between the two
    shows meta-overfitting to the training goals."""
    spec, run, config = load_run_config(run_dir)
    bench = adaptrl.make(run.env, split_seed=run.split_seed)
    train_results = []
    if bench.split.train_tasks is not None:
        if not (run_dir / "results_train_tasks").exists():
            on_train = dataclasses.replace(
                bench, split=dataclasses.replace(bench.split, test_tasks=bench.split.train_tasks)
            )
            evaluate(run_dir, spec=spec, benchmark=on_train,
                     run=dataclasses.replace(run, references=False), algo_config=config,
                     out_dir=run_dir / "results_train_tasks")  # fmt: skip
        train_results = load_results(run_dir / "results_train_tasks")
    overrides = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                 if getattr(config, f.name) != getattr(rl2.RL2Config(), f.name)}  # fmt: skip
    reading = {}
    if isinstance(bench.env, SignGrid):
        reading = {name: sign_reading(run_dir, name) for name in ("test", "train")}
    return {"env": run.env, "iterations": run.iterations, "seeds": run.num_seeds,
            "reading": reading, "overrides": overrides, "wall_s": wall_s, "run_dir": str(run_dir),
            "results": load_results(run_dir / "results"), "num_test_tasks": bench.num_test_tasks,
            "num_train_tasks": bench.split.num_train_tasks,
            "train_results": train_results}  # fmt: skip


def sign_reading(run_dir: Path, tasks_name: str = "test", trials_per_task: int = 2) -> dict:
    """Episode-1 behaviour of each trained seed on the sign grid: how often the agent stands on
    the sign (sees the reading) before the episode ends, and how often it then succeeds.

    Returns ``{"read": (seeds,), "success_after_read": (seeds,)}`` rates."""
    spec, run, config = load_run_config(run_dir)
    bench = adaptrl.make(run.env, split_seed=run.split_seed)
    tasks = bench.test_tasks if tasks_name == "test" else bench.split.train_tasks
    _, state = load_checkpoint(
        latest_checkpoint(run_dir / "checkpoints"), _init_states(spec, bench, run, config)
    )
    n = tree_size(tasks)
    reps = jax.tree_util.tree_map(lambda x: np.repeat(np.asarray(x), trials_per_task, 0), tasks)
    keys = jax.random.split(jax.random.PRNGKey(777), n * trials_per_task)
    read, success = [], []
    for i in range(run.num_seeds):
        agent = spec.make_agent(tree_index(state, i), bench, config)
        trials = jax.jit(jax.vmap(lambda t, k: run_trial(bench.env, agent, t, k, 2)))(reps, keys)  # noqa: B023
        tr = trials.transitions
        seen = np.asarray(tr.next_observation[:, 0, :, -2:].sum(-1) > 0) & np.asarray(
            tr.valid[:, 0]
        )
        was_read = seen.any(-1)
        read.append(was_read.mean())
        ok = np.asarray(trials.episode_success[:, 0])
        success.append(ok[was_read].mean() if was_read.any() else float("nan"))
    return {"read": np.asarray(read), "success_after_read": np.asarray(success)}


def summarize(r: dict) -> list[str]:
    wall = "not recorded" if r["wall_s"] is None else f"{r['wall_s']:.0f} s"
    lines = [f"### {r['env']}", "",
             f"{r['iterations']} updates, {r['seeds']} training seeds, config changes "
             f"{r['overrides'] or 'none'}; wall-clock {wall} (train + meta-test). "
             f"Run directory `{r['run_dir']}`. Rows: the {r['num_test_tasks']} held-out tasks; "
             f"last row, the same RL² agents on the {r['num_train_tasks']} meta-training tasks.",
             ""]  # fmt: skip
    results = r["results"]
    n_ep = results[0].num_episodes
    head = " | ".join(f"ep {e + 1}" for e in range(n_ep))
    lines += [f"| agent | {head} | trial total | success per episode | steps to goal per episode |",
              "|---|" + "---:|" * n_ep + "---:|---|---|"]  # fmt: skip
    labelled = [(res.agent, res) for res in results]
    labelled += [(f"{res.agent} (meta-training tasks)", res) for res in r["train_results"]]
    for agent, res in labelled:
        curve = res.curve()
        total = res._ci(res.trial_returns)
        succ = res.success.mean(axis=(0, 1))
        steps = []
        for e in range(n_ep):
            ok = res.success[..., e].astype(bool)
            first = res.first_success_step[..., e][ok]
            steps.append(f"{first.mean():.1f}" if ok.any() else "–")  # 1-based already
        lines.append(
            f"| {agent} | "
            + " | ".join(f"{c.mean:.2f} ± {c.half_width:.2f}" for c in curve)
            + f" | {total.mean:.2f} ± {total.half_width:.2f} | "
            + ", ".join(f"{s:.2f}" for s in succ)
            + " | "
            + ", ".join(steps)
            + " |"
        )
    lines.append("")
    for name, rd in r.get("reading", {}).items():
        where = "held-out" if name == "test" else "meta-training"
        lines.append(
            f"- Sign reading, {where} tasks, episode 1: stood on the sign in "
            + ", ".join(f"{x:.2f}" for x in rd["read"])
            + " of trials (per trained seed); of those, reached the correct goal in "
            + ", ".join(f"{x:.2f}" for x in rd["success_after_read"])
            + "."
        )
    if r.get("reading"):
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
    p.add_argument("--from-runs", nargs="+", default=None, metavar="RUN_DIR",
                   help="report finished run directories instead of training")  # fmt: skip
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="override RL2Config fields, e.g. --set entropy_coef=0.05")  # fmt: skip
    a = p.parse_args()
    extra = parse_overrides(a.set, rl2.RL2Config)
    if a.from_runs:
        rows = [collect(Path(d)) for d in a.from_runs]
    else:
        rows = [run_env(env, a.seeds, a.iterations, Path(a.runs), extra) for env in a.envs]
    lines = [f"## Grid tasks, run of {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Command: `python benchmarks/rl2_grids.py {' '.join(sys.argv[1:])}`  ",
             f"Machine: {platform.machine()}, 2-core CPU, no GPU; Python "
             f"{platform.python_version()}, jax {jax.__version__}. Held-out tasks of each "
             "benchmark (split seed 0), 2 evaluation trials per task and trained seed; mean ± 95% "
             "CI (t-interval across trained seeds for RL², across trials for references). "
             "Steps to goal: mean step of first success, over successful episodes.",
             ""]  # fmt: skip
    for r in rows:
        lines += summarize(r)
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_write:
        append_section(a.out, text)


if __name__ == "__main__":
    main()
