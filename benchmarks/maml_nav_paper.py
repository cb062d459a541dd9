"""MAML on 2D navigation with the configuration of the code behind the paper's Table 4.

``benchmarks/maml_nav.py`` runs the PyTorch reimplementation's settings (raw action units,
inner lr 0.1, per-episode loss averaging). The original code (cbfinn/maml_rl, see
docs/maml_gap_analysis.md) differs in three ways that matter on point-nav, and this script
runs that configuration (``PAPER_CFG``):

- the Gaussian acts in [-1, 1] and the env scales by 0.1 (rllab's ``normalize``):
  ``normalize_actions=True``, inner lr 0.5 then 0.25 (the released test script's values);
- rllab's VPG/TRPO average the loss over all sampled steps, not per episode first:
  ``loss_averaging="steps"`` (per-episode averaging lets an episode that hits the goal by
  chance after a few steps dominate the inner gradient: the "runaways" in docs/results/maml.md);
- meta-test takes up to 3 gradient steps "each with 40 samples" (paper §5.3):
  ``eval_trajectories=40``.

Parts (one heavy job at a time on the 2-core machine)::

    python benchmarks/maml_nav_paper.py train --seed 0 --num-seeds 1   # -> runs/maml_bench/paper_s0
    python benchmarks/maml_nav_paper.py train --seed 1 --num-seeds 2   # -> runs/maml_bench/paper_s1
    python benchmarks/maml_nav_paper.py metatest runs/maml_bench/paper_s0 runs/maml_bench/paper_s1

``train`` is ``adaptrl train maml --env point-nav --iterations 500 --maml.normalize-actions
--maml.inner-lr 0.5 --maml.later-inner-lr 0.25 --maml.loss-averaging steps
--maml.eval-trajectories 40``. ``metatest`` re-evaluates the newest checkpoint of each run
directory under several meta-test settings (loss averaging of the test-time steps, episodes
per step), pools the trained seeds of all directories (± = 95% t-interval across trained
seeds) and appends a dated table to docs/results/maml.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np

import adaptrl
from adaptrl.algos import maml
from adaptrl.eval.stats import seed_task_ci
from adaptrl.tasks.distribution import tree_index
from adaptrl.train import RunConfig, _init_states, evaluate, load_run_config, train
from adaptrl.utils.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from _report import append_section, cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "maml_bench"
REPORT = ROOT / "docs" / "results" / "maml.md"
PAPER = [-40.41, -11.68, -3.33, -3.23]
TARGET = ["about -40 (±5)", ">= -13", ">= -5", "–"]

PAPER_CFG = maml.MAMLConfig(normalize_actions=True, inner_lr=0.5, later_inner_lr=0.25,
                            loss_averaging="steps", eval_trajectories=40)  # fmt: skip

# (label, MAMLConfig overrides used at meta-test only)
VARIANTS = {
    "as trained, 40 episodes/step": {},
    "as trained, 20 episodes/step": {"eval_trajectories": 20},
    # the released test script's VPG(batch_size=4000): whole episodes up to 4000 env steps
    "as trained, 4000 samples/step": {"eval_samples": 4000},
    # ... stepped as rllab's VectorizedSampler (40 envs in lockstep; episodes still running when
    # the budget is reached are dropped), which VPG used in the paper's test script
    "as trained, 4000 samples/step, 40 envs": {"eval_samples": 4000, "eval_parallel_envs": 40,
                                               "eval_episode_cap": 1200},
    "test steps averaged per step": {"eval_loss_averaging": "steps"},
    "test steps averaged per episode": {"eval_loss_averaging": "episodes"},
}


def run_train(seed: int, num_seeds: int, iterations: int) -> None:
    run_dir = OUT / f"paper_s{seed}"
    run = RunConfig(env="point-nav", iterations=iterations, seed=seed, num_seeds=num_seeds,
                    eval_seeds=2, run_dir=str(run_dir), progress=False, log_every=25,
                    checkpoint_every=max(iterations, 1))  # fmt: skip
    t = time.perf_counter()
    train("maml", run, PAPER_CFG)
    print(f"trained {num_seeds} seed(s) from {seed} in {time.perf_counter() - t:.0f} s")


def step_stats(returns: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Per step k: mean ± CI over trained seeds, median, share below -100.

    returns: (rows, tasks, K); groups: (rows,) trained seed behind each row."""
    out = []
    for k in range(returns.shape[-1]):
        x = returns[..., k]
        ci = seed_task_ci(x, groups)
        seeds = [float(x[groups == g].mean()) for g in np.unique(groups)]
        out.append({"mean": ci.mean, "ci95": ci.half_width, "median": float(np.median(x)),
                    "below": float((x < -100).mean()), "seeds": seeds})  # fmt: skip
    return out


def metatest(run_dirs: list[str], variants: list[str]) -> str:
    start = time.perf_counter()
    run_dirs = list(dict.fromkeys(str(Path(d)) for d in run_dirs))  # each trained seed once
    rows, trained, eval_seeds = [], [], set()
    for label in variants:
        rets, groups, offset = [], [], 0
        for d in run_dirs:
            spec, run, cfg = load_run_config(d)
            trained.append(f"{d}: seeds {run.seed}..{run.seed + run.num_seeds - 1}, "
                           f"{run.iterations} its, loss_averaging={cfg.loss_averaging}, "
                           f"inner lr {cfg.inner_lr}/{cfg.later_inner_lr}, "
                           f"normalize_actions={cfg.normalize_actions}")  # fmt: skip
            bench = adaptrl.make(run.env, split_seed=run.split_seed)
            cfg2 = dataclasses.replace(cfg, **VARIANTS[label])
            run2 = dataclasses.replace(run, references=False)
            eval_seeds.add(run.eval_seeds)
            slug = label.replace(" ", "_").replace(",", "").replace("/", "_")
            res = evaluate(d, spec=spec, benchmark=bench, run=run2, algo_config=cfg2,
                           out_dir=Path(d) / "metatest" / slug)[0]  # fmt: skip
            rets.append(res.returns)
            groups.append(np.asarray(res.groups) + offset)
            offset += run.num_seeds
            n_traj = (f"{cfg2.eval_samples} steps, {cfg2.eval_parallel_envs} env(s)"
                      if cfg2.eval_samples else cfg2.eval_trajectories)  # fmt: skip
            avg = maml._eval_averaging(cfg2)
        stats = step_stats(np.concatenate(rets), np.concatenate(groups))
        rows.append((label, n_traj, avg, stats))
    wall = time.perf_counter() - start

    def fmt(s):
        h = f" ± {s['ci95']:.2f}" if np.isfinite(s["ci95"]) else ""
        return f"{s['mean']:.2f}{h}"

    n_seeds = len(rows[0][3][0]["seeds"])
    spread = ("± = 95% t-interval across trained seeds" if n_seeds > 1 else
              "± = 95% interval over the seed x task entries of the one trained seed")  # fmt: skip
    lines = [
        f"## Paper configuration, meta-test variants ({time.strftime('%Y-%m-%d %H:%M')})", "",
        "Trained with `benchmarks/maml_nav_paper.py train` (normalized actions, inner lr 0.5 then "
        "0.25 at meta-test, `loss_averaging=steps`); runs: " + "; ".join(dict.fromkeys(trained))
        + f". {n_seeds} trained seed(s) x {'/'.join(map(str, sorted(eval_seeds)))} evaluation "
        "seeds x the 40 held-out tasks; each entry is the mean return of the episodes sampled "
        f"after k steps; {spread}; last column: share of seed x task entries below -100 after "
        "k = 1 / 2 / 3.",
        "",
        "| meta-test setting | episodes/step | test-step averaging | k=0 | k=1 | k=2 | k=3 | "
        "< -100 (k=1/2/3) |",
        "|---|---:|---|---:|---:|---:|---:|---|",
        f"| paper MAML (Table 4) | 40 | steps | {PAPER[0]} | {PAPER[1]} | {PAPER[2]} | "
        f"{PAPER[3]} | |",
        f"| target (issue #4) | | | {TARGET[0]} | {TARGET[1]} | {TARGET[2]} | – | |",
    ]  # fmt: skip
    for label, n_traj, avg, st in rows:
        below = " / ".join(f"{s['below']:.3f}" for s in st[1:])
        lines.append(f"| {label} | {n_traj} | {avg} | "
                     + " | ".join(fmt(s) for s in st) + f" | {below} |")  # fmt: skip
    lines += ["", "Per trained seed, first setting: " + "; ".join(
        f"k={k}: " + ", ".join(f"{v:.2f}" for v in s["seeds"])
        for k, s in enumerate(rows[0][3])) + "."]  # fmt: skip
    lines += ["", f"Command: `{shlex.join(['python', *sys.argv])}`. Machine: {cpu_model()}, "
              f"{os.cpu_count()} cores; python {platform.python_version()}, jax {jax.__version__}."
              f" Meta-test wall-clock {wall:.0f} s for all settings."]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    return text


def training_goals(bench, num_tasks: int):
    """The goals meta-test settings are chosen on: sampled from the *training* distribution
    (key 12345), never the held-out tasks."""
    keys = jax.random.split(jax.random.PRNGKey(12345), num_tasks)
    return jax.vmap(bench.sample_train_task)(keys)


def select_later_lr(run_dirs: list[str], candidates: list[float], num_tasks: int = 40,
                    eval_samples: int = 0, parallel_envs: int = 1) -> str:  # fmt: skip
    """Choose the step size of meta-test steps 2+ on *meta-training* tasks (never the held-out
    ones): for each candidate, 40 goals sampled from the training distribution, the paper's
    protocol (``eval_samples`` > 0: the sample-budget variant), score = mean return after steps
    2 and 3."""

    start = time.perf_counter()
    per_lr = {lr: [] for lr in candidates}
    for d in dict.fromkeys(run_dirs):
        spec, run, cfg = load_run_config(d)
        bench = adaptrl.make(run.env, split_seed=run.split_seed)
        template = _init_states(spec, bench, run, cfg)
        _, state = load_checkpoint(latest_checkpoint(Path(d) / "checkpoints"), template)
        tasks = training_goals(bench, num_tasks)
        for lr in candidates:
            cfg2 = dataclasses.replace(cfg, later_inner_lr=lr, eval_samples=eval_samples,
                                       eval_steps=3,  # the paper's protocol (table k = 0..3)
                                       eval_parallel_envs=parallel_envs,
                                       eval_episode_cap=30 * parallel_envs if parallel_envs > 1
                                       else cfg.eval_episode_cap)  # fmt: skip
            states = [tree_index(state, i) for i in range(run.num_seeds)]
            seeds = [777 + i for i in range(run.num_seeds)]
            res = maml.evaluate_adaptation(bench, states, cfg2, tasks=tasks, seeds=seeds)
            per_lr[lr].append(np.asarray(res.returns).mean(axis=(0, 1)))
    lines = ["| later lr | k=0 | k=1 | k=2 | k=3 | score (k=2,3) |",
             "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    means = {lr: np.mean(arrs, axis=0) for lr, arrs in per_lr.items()}
    for lr, m in means.items():
        lines.append(f"| {lr} | " + " | ".join(f"{v:.2f}" for v in m) + f" | {m[2:].mean():.2f} |")
    best = max(means, key=lambda lr: means[lr][2:].mean())
    best_k2 = max(means, key=lambda lr: means[lr][2])
    text = "\n".join([
        f"## Paper configuration: step size of meta-test steps 2+ chosen on meta-training tasks "
        f"({time.strftime('%Y-%m-%d %H:%M')})", "",
        f"{num_tasks} goals sampled from the *training* distribution (key 12345), runs "
        f"{', '.join(dict.fromkeys(run_dirs))}, one evaluation seed per trained seed; mean return "
        "after k steps (first step lr 0.5 as trained); episodes per step: "
        + (f"whole episodes up to {eval_samples} env steps, {parallel_envs} env(s) in lockstep"
           if eval_samples
           else f"{cfg.eval_trajectories}") + ".", "", *lines, "",
        f"Best mean of k = 2 and 3: `later_inner_lr={best}`; best at k = 2 (the step with a "
        f"target in issue #4): `later_inner_lr={best_k2}`. Command: "
        f"`{shlex.join(['python', *sys.argv])}`; wall-clock {time.perf_counter() - start:.0f} s.",
    ])  # fmt: skip
    print(text)
    return text


def select_iterate(run_dir: str, ckpt_dir: str | None, later_lr: float | None,
                   num_tasks: int = 40) -> str:  # fmt: skip
    """Choose the meta-training iterate on *training* goals, then meta-test it on the held-out
    ones next to the final iterate.

    The paper evaluated "the model with the best average return during training". The logged
    post-update return is one noisy meta-batch, so here every checkpoint in ``ckpt_dir``
    (default RUN/checkpoints; train with ``--keep-checkpoints 0`` to keep them all) is scored
    on 40 goals from the training distribution (key 12345, as select-lr): mean return after 1
    and 2 steps. One trained seed per run directory."""
    start = time.perf_counter()
    spec, run, cfg = load_run_config(run_dir)
    if run.num_seeds != 1:
        raise SystemExit(f"select-iterate takes a one-seed run; {run_dir} has {run.num_seeds}")
    cfg = dataclasses.replace(cfg, eval_steps=3)  # the paper's protocol; the table has k = 0..3
    if later_lr is not None:
        cfg = dataclasses.replace(cfg, later_inner_lr=later_lr)
    bench = adaptrl.make(run.env, split_seed=run.split_seed)
    template = _init_states(spec, bench, run, cfg)
    ckpts = list_checkpoints(Path(ckpt_dir) if ckpt_dir else Path(run_dir) / "checkpoints")
    if not ckpts:
        raise SystemExit(f"no checkpoints in {ckpt_dir or run_dir}")
    train_tasks = training_goals(bench, num_tasks)
    scores, states = {}, {}
    for it, path in ckpts:
        _, st = load_checkpoint(path, template)
        states[it] = tree_index(st, 0)
        res = maml.evaluate_adaptation(bench, states[it], cfg, tasks=train_tasks, seeds=[777])
        scores[it] = np.asarray(res.returns).mean(axis=(0, 1))
    best = max(scores, key=lambda i: scores[i][1:3].mean())
    last = max(scores)
    held = {}
    for it in dict.fromkeys([best, last]):
        seeds = [1000 * run.seed + j for j in range(run.eval_seeds)]
        res = maml.evaluate_adaptation(bench, [states[it]] * len(seeds), cfg, seeds=seeds)
        x = np.asarray(res.returns)  # (eval seeds, tasks, K); one trained seed: one group
        held[it] = [(ci.mean, ci.half_width)
                    for ci in (seed_task_ci(x[..., k]) for k in range(x.shape[-1]))]  # fmt: skip
    lines = [
        f"## Paper configuration: iterate chosen on meta-training goals "
        f"({time.strftime('%Y-%m-%d %H:%M')})", "",
        f"Run {run_dir} (seed {run.seed}, hidden {cfg.hidden_sizes} {cfg.activation}, inner lr "
        f"{cfg.inner_lr}, steps 2+ lr {cfg.later_inner_lr}, loss_averaging "
        f"{cfg.loss_averaging}); checkpoints from {ckpt_dir or run_dir + '/checkpoints'}. "
        f"Score = mean return after 1 and 2 steps on {num_tasks} *training* goals (key 12345).",
        "", "| iteration | k=0 | k=1 | k=2 | k=3 | score |", "|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for it, m in scores.items():
        mark = " (chosen)" if it == best else ""
        lines.append(f"| {it}{mark} | " + " | ".join(f"{v:.2f}" for v in m)
                     + f" | {m[1:3].mean():.2f} |")  # fmt: skip
    lines += ["", f"Held-out tasks ({run.eval_seeds} eval seeds x 40 tasks, ± = 95% interval over "
              "the seed x task entries of this one trained seed):", "",
              "| iterate | k=0 | k=1 | k=2 | k=3 |", "|---|---:|---:|---:|---:|",
              f"| paper MAML (Table 4) | {' | '.join(map(str, PAPER))} |"]  # fmt: skip
    for it, h in held.items():
        label = ("chosen" if it == best else "") + (" = " if it == best == last else "") + (
            "final" if it == last else "")
        lines.append(f"| {it} ({label}) | " + " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in h)
                     + " |")  # fmt: skip
    lines += ["", f"Command: `{shlex.join(['python', *sys.argv])}`; wall-clock "
              f"{time.perf_counter() - start:.0f} s."]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="part", required=True)
    t = sub.add_parser("train", help="meta-train PAPER_CFG on point-nav")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--num-seeds", type=int, default=1)
    t.add_argument("--iterations", type=int, default=500)
    m = sub.add_parser("metatest", help="re-evaluate run directories under meta-test variants")
    m.add_argument("run_dirs", nargs="+")
    m.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    m.add_argument("--no-append", action="store_true", help="print only")
    m.add_argument("--later-lr", type=float, nargs="*", default=[],
                   help="also meta-test with these step sizes for steps 2+ (from select-lr)")
    sl = sub.add_parser("select-lr", help="pick the step size of meta-test steps 2+ on "
                        "meta-training tasks")  # fmt: skip
    sl.add_argument("run_dirs", nargs="+")
    sl.add_argument("--candidates", nargs="+", type=float, default=[0.25, 0.1, 0.05, 0.025])
    sl.add_argument("--no-append", action="store_true", help="print only")
    sl.add_argument("--eval-samples", type=int, default=0,
                    help="meta-test with a budget of env steps per step (0: episodes)")
    sl.add_argument("--parallel-envs", type=int, default=1,
                    help="with --eval-samples: envs stepped in lockstep (40: rllab's "
                    "VectorizedSampler in the paper's test script)")  # fmt: skip
    si = sub.add_parser("select-iterate", help="choose the training iterate on training goals "
                        "and meta-test it next to the final one")  # fmt: skip
    si.add_argument("run_dir")
    si.add_argument("--checkpoints", default=None, help="folder of checkpoints (default "
                    "RUN_DIR/checkpoints)")  # fmt: skip
    si.add_argument("--later-lr", type=float, default=None, help="steps 2+ lr (default: run's)")
    si.add_argument("--no-append", action="store_true", help="print only")
    a = p.parse_args(argv)
    print("command:", shlex.join([sys.executable, *sys.argv]), "| load", os.getloadavg()[0])
    if a.part == "train":
        run_train(a.seed, a.num_seeds, a.iterations)
    elif a.part == "select-iterate":
        text = select_iterate(a.run_dir, a.checkpoints, a.later_lr)
        if not a.no_append:
            append_section(REPORT, text)
    elif a.part == "select-lr":
        text = select_later_lr(a.run_dirs, a.candidates, eval_samples=a.eval_samples,
                               parallel_envs=a.parallel_envs)  # fmt: skip
        if not a.no_append:
            append_section(REPORT, text)
    else:
        chosen = list(a.variants)
        for lr in a.later_lr:
            for label in chosen:
                VARIANTS[f"{label}, steps 2+ lr {lr}"] = {**VARIANTS[label], "later_inner_lr": lr}
                a.variants.append(f"{label}, steps 2+ lr {lr}")
        text = metatest(a.run_dirs, a.variants)
        if not a.no_append:
            append_section(REPORT, text)
            print(f"appended to {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
