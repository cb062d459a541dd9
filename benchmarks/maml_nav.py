"""MAML benchmarks: 2D navigation (Finn et al. 2017, Table 4), speed, and Bernoulli bandits.

Parts (run them one at a time on a quiet machine; each saves a JSON under ``runs/maml_bench/``,
and ``report`` turns whatever is there into ``docs/results/maml.md``)::

    .venv/bin/python benchmarks/maml_nav.py speed      # 1 seed, 500 meta-iterations, timed
    .venv/bin/python benchmarks/maml_nav.py accuracy   # 3 seeds (vmapped), 500 its, meta-test
    .venv/bin/python benchmarks/maml_nav.py bandits    # bandit-k5-n10 / -n100, 3 seeds each
    .venv/bin/python benchmarks/maml_nav.py report     # write docs/results/maml.md
    .venv/bin/python benchmarks/maml_nav.py all --quick   # smoke test of every part, no report

Settings are the public PyTorch reimplementation's (``MAMLConfig`` defaults): 20 tasks x 20
trajectories x H = 100, 64-64 tanh Gaussian policy, one inner VPG step with lr 0.1, linear
baseline, TRPO max-KL 0.01, 10 CG iterations, damping 1e-5, 15 line-search steps x 0.8,
gamma 0.99, GAE lambda 1.0. Meta-test: the paper's protocol through ``adaptrl.train`` (returns
after 0..3 steps on the 40 held-out tasks, ``eval_trajectories`` (40, the paper's "40 samples")
episodes per step, lr 0.1 then 0.05). ``benchmarks/maml_nav_paper.py`` runs the original
code's configuration instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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
from adaptrl.eval.report import load_results
from adaptrl.eval.stats import seed_task_ci
from adaptrl.train import RunConfig, train
from adaptrl.utils.io import atomic_write_text

sys.path.insert(0, str(Path(__file__).parent))
from _report import append_section, cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "maml_bench"
REPORT = ROOT / "docs" / "results" / "maml.md"
PAPER = {"MAML": [-40.41, -11.68, -3.33, -3.23], "context-vector": [-42.42, -13.90, -5.17, -3.18]}
TARGET = {0: "about -40 (±5)", 1: ">= -13", 2: ">= -5", 3: "–"}


def machine() -> dict:
    cpu = cpu_model()
    import flax
    import optax

    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores, {platform.machine()}",
        "backend": jax.default_backend(),
        "versions": f"python {platform.python_version()}, jax {jax.__version__}, "
        f"flax {flax.__version__}, optax {optax.__version__}",
        "load_before": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def save(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, default=float))
    print(f"saved {path}")
    return path


def _time(fn, *args, n: int):
    jax.block_until_ready(fn(*args))
    t = time.perf_counter()
    for _ in range(n):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / n


def speed(iterations: int, quick: bool) -> dict:
    """One seed, ``iterations`` meta-iterations of the jitted update, as adaptrl.train runs it."""
    bench = adaptrl.make("point-nav")
    cfg = maml.MAMLConfig()
    info = machine()
    t0 = time.perf_counter()
    state = maml.init(jax.random.PRNGKey(0), bench, cfg, iterations)
    update = jax.jit(maml.make_update(bench, cfg, iterations))
    compiled = update.lower(state).compile()
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    rows = []
    for i in range(iterations):
        state, metrics = compiled(state)
        if (i + 1) % 50 == 0 or i + 1 == iterations:
            m = jax.device_get(metrics)
            rows.append({"iteration": i + 1, **{k: float(v) for k, v in m.items()}})
            print(f"it {i + 1}: {time.perf_counter() - t1:.1f}s post-update return "
                  f"{rows[-1]['post_update_return']:.2f}", flush=True)  # fmt: skip
    jax.block_until_ready(state)
    run_s = time.perf_counter() - t1
    steps = maml.env_steps_per_update(bench, cfg) * iterations
    # Where the time goes: sampling (rollouts + baselines + sampling-policy inner steps) vs outer.
    upd = maml.make_update(bench, cfg, iterations)
    collect = jax.jit(upd.collect)
    n = 2 if quick else 10
    collect_s = _time(collect, state, state.key, n=n)
    fo = dataclasses.replace(cfg, first_order=True)
    fo_update = jax.jit(maml.make_update(bench, fo, iterations))
    fo_s = _time(lambda s: fo_update(s)[1], state, n=n)
    return {
        **info,
        "iterations": iterations,
        "compile_s": compile_s,
        "run_s": run_s,
        "total_s": compile_s + run_s,
        "per_iteration_ms": 1e3 * run_s / iterations,
        "env_steps": steps,
        "env_steps_per_s": steps / run_s,
        "collect_ms": 1e3 * collect_s,
        "first_order_per_iteration_ms": 1e3 * fo_s,
        "load_after": os.getloadavg()[0],
        "curve": rows,
    }


def accuracy(iterations: int, seeds: int, quick: bool) -> dict:
    """3 training seeds vmapped in one process through ``adaptrl.train`` (the CLI's path)."""
    run_dir = OUT / ("nav_quick" if quick else "nav")
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    run = RunConfig(env="point-nav", iterations=iterations, num_seeds=seeds, seed=0,
                    eval_seeds=2, run_dir=str(run_dir), progress=False, log_every=10,
                    checkpoint_every=max(iterations, 1))  # fmt: skip
    cfg = maml.MAMLConfig(eval_trajectories=4) if quick else maml.MAMLConfig()
    info = machine()
    t = time.perf_counter()
    train("maml", run, cfg)
    wall = time.perf_counter() - t
    results = {r.agent: r for r in load_results(run_dir / "results")}
    r = results["maml"]
    per_step = []
    for k in range(r.num_episodes):
        ci = seed_task_ci(r.returns[..., k], r.groups)
        seed_means = [float(r.returns[np.asarray(r.groups) == g][..., k].mean())
                      for g in sorted(set(r.groups))]  # fmt: skip
        x = r.returns[..., k]
        per_step.append({"mean": ci.mean, "ci95": ci.half_width, "seed_means": seed_means,
                         "median": float(np.median(x)), "frac_below_-100": float((x < -100).mean()),
                         "min": float(x.min())})  # fmt: skip
    refs = {}
    for name, res in results.items():
        if name != "maml":
            ci = seed_task_ci(res.returns[..., 0], res.groups)
            refs[name] = {"mean": ci.mean, "ci95": ci.half_width}
    return {
        **info,
        "command": f"adaptrl.train.train('maml', RunConfig(env='point-nav', iterations="
        f"{iterations}, num_seeds={seeds}, eval_seeds=2), MAMLConfig())",
        "iterations": iterations,
        "seeds": seeds,
        "loss_averaging": cfg.loss_averaging,
        "eval_trajectories": cfg.eval_trajectories,
        "wall_s": wall,
        "per_step": per_step,
        "references_per_episode": refs,
        "num_tasks": int(r.returns.shape[1]),
        "rows": int(r.returns.shape[0]),
        "run_dir": str(run_dir.relative_to(ROOT)),
        "load_after": os.getloadavg()[0],
    }


# tanh, not the reimplementation's ReLU: adaptrl's bandit observation is a constant 0 (the
# reimplementation's is 1), so a ReLU net with zero-initialised biases has all-zero hidden units
# and no gradient below its output layer; MAML then cannot adapt at all (measured: at chance).
BANDIT_CFG = dict(hidden_sizes=(32, 32), activation="tanh", gamma=0.95, inner_lr=0.5,
                  num_tasks=20, eval_protocol="trial")  # fmt: skip


def bandits(iterations: int, seeds: int, quick: bool) -> dict:
    """MAML on Bernoulli bandits, scored like RL² Table 1: total reward of an n-pull trial.

    The trial is split in two: n/2 pulls with the meta-learned policy, one policy-gradient step
    on them (lr 0.5), n/2 pulls with the adapted policy. Meta-training matches: 20 tasks x n/2
    pre-update pulls x 1 inner step, post-update n/2 pulls (the reimplementation's bandit
    settings, 32-32 hidden units, gamma 0.95, fast lr 0.5, 20 tasks, except tanh for ReLU).
    Three variants: the paper's estimator with TRPO, DiCE with TRPO, ProMP (LVC + KL penalty)
    with PPO.
    """
    variants = {
        "maml": dict(),
        "maml-dice": dict(objective="dice"),
        "promp": dict(objective="promp", outer="ppo"),
    }
    out = {**machine(), "cells": {}}
    for n in (10, 100):
        name = f"bandit-k5-n{n}"
        half = n // 2
        cell = {}
        for variant, overrides in variants.items():
            cfg = maml.MAMLConfig(**BANDIT_CFG, **overrides, trajectories_per_task=half,
                                  adapt_every=half)  # fmt: skip
            run_dir = OUT / f"{name}_{variant}{'_quick' if quick else ''}"
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            run = RunConfig(env=name, iterations=iterations, num_seeds=seeds, eval_seeds=1,
                            run_dir=str(run_dir), progress=False, log_every=50,
                            checkpoint_every=max(iterations, 1),
                            references=variant == "maml")  # fmt: skip
            t = time.perf_counter()
            train("maml", run, cfg)
            cell[f"{variant}_wall_s"] = time.perf_counter() - t
            for r in load_results(run_dir / "results"):
                ci = seed_task_ci(r.trial_returns, r.groups)
                first = seed_task_ci(r.returns[..., :half].sum(-1), r.groups)
                second = seed_task_ci(r.returns[..., half:].sum(-1), r.groups)
                key = variant if r.agent == "maml" else r.agent
                cell[key] = {"trial": [ci.mean, ci.half_width], "first_half": first.mean,
                             "second_half": second.mean, "rows": int(r.returns.shape[0]),
                             "tasks": int(r.returns.shape[1])}  # fmt: skip
            print(name, variant, cell[variant], flush=True)
        out["cells"][name] = cell
    return out


# ----------------------------------------------------------------------------------------------


def _fmt(m, h):
    return f"{m:.2f} ± {h:.2f}" if np.isfinite(h) else f"{m:.2f}"


APPENDED_MARKER = "<!-- report keeps everything below this line (appended sections) -->"

NOTES = """## How this implementation relates to the paper and the reimplementation

- **Exactness.** `tests/test_maml.py` checks the second-order meta-gradient against central finite
  differences of the post-update objective in float64 (all 44 parameters of a tiny policy, for the
  `maml` and `promp` estimators) and that first-order MAML differs from it; that the TRPO
  Fisher-vector product equals the Hessian-vector product of the post-update KL through the inner
  step; that DiCE and LVC have the score-function gradient but different Hessians; and that the
  accepted TRPO step respects the KL bound.
- **Actions.** By default the Gaussian acts in raw velocity units, clipped to +-0.1 by the
  environment, as in the PyTorch reimplementation. The original MAML code instead wraps the point
  environment in rllab's `normalize(...)`, so its Gaussian acts in [-1, 1] units mapped onto the
  velocity box; `--maml.normalize-actions` does the same. With it the meta-learned std shrinks to
  about 0.02 in env units (0.3 without), steps 2-3 improve in the median, but a fixed-size inner
  step on such a sharp policy now and then throws a task's adapted policy far off (it runs away
  at full speed, about -720), which wrecks the means (table above). Neither variant reaches the
  paper after 1-2 steps.
- **Inner step size.** 0.1 (reimplementation and paper text; evaluation 0.1 then 0.05). The original
  script uses 0.5 (evaluation 0.5 then 0.25, 40 trajectories per step); in a 150-iteration pilot on
  this code 0.5 was worse after one step (-27) and diverged after two.
- **Where the time goes.** Each meta-iteration samples 80,000 env steps (20 tasks x 20 episodes x
  100 steps, before and after adaptation; about 50 ms) and then runs TRPO, whose cost is dominated
  by the 10 Fisher-vector products: each goes forward and backward through every task's inner
  policy-gradient step *and its second-order tangent* (about 20 passes of a 2000 x 64 x 64 matrix
  product per task, 6.6 GFLOP per product over 20 tasks, measured at roughly 40-55 ms each, i.e.
  150 GFLOP/s, close to what this CPU sustains on such products). That puts the exact
  second-order algorithm at these settings at several hundred ms per iteration on two cores, so
  the < 90 s target (180 ms per iteration) is out of reach without changing the algorithm (e.g.
  first-order MAML, fewer CG iterations, or sub-sampled Fisher-vector products, none of which is
  the default). Two measures that made our first version about 1.3x faster per iteration: tasks
  are processed one after the other inside the jitted outer step (`lax.map`, so a task's
  activations stay in cache; for the inner Hessian-vector product alone this is 2.6x faster than
  vmapping all 20 tasks), and each Fisher-vector product is computed per task as `J^T H_out J v`
  (forward pass, elementwise KL Hessian in output space, transpose), exact at the old parameters
  because the KL's gradient vanishes there; `s^T F s` for the step size comes from the CG
  residual instead of an 11th product.
- **Other choices.** Fresh episodes are sampled for every inner step when `num_inner_steps > 1`
  (the reimplementation reuses the first batch). The linear baseline's ridge is relative
  (1e-5 x mean diagonal of X^T X) to keep the float32 solve well conditioned. Advantages are
  standardised per task and batch, as in the reimplementation. Policy weights use adaptrl's MLP
  (orthogonal init) with a small output layer rather than Xavier init.
- **Loss averaging (changed 2026-12-04).** The tables above were measured with the
  reimplementation's averaging (mean over each episode's valid steps, then over episodes). Since
  point-nav ends an episode within 0.01 of the goal, a pre-update episode that hits a goal near
  the start by chance lasts a few steps, and that averaging gives each of its steps up to 100x
  the weight of a step of a full episode: the inner step grows 2-4x and the adapted policy runs
  past the goal (all runaway tasks had |goal| < 0.2). `benchmarks/maml_runaway.py` shows it on
  one set of meta-parameters; `loss_averaging="steps"` (one mean over all valid steps, as the
  original rllab-based code) is an option. Meta-training with it was measured worse (appended
  below), so the default stays "episodes".
"""


def _nav_table(acc: dict) -> list[str]:
    rows = [
        "| k | paper MAML | paper context-vector | ours (mean ± 95% CI) | ours per seed | "
        "median | share < -100 | target |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for k, s in enumerate(acc["per_step"]):
        seeds = ", ".join(f"{v:.2f}" for v in s["seed_means"])
        paper = f"{PAPER['MAML'][k]:.2f} | {PAPER['context-vector'][k]:.2f}"
        ours = _fmt(s["mean"], s["ci95"])
        extra = (
            f"{s.get('median', float('nan')):.2f} | {s.get('frac_below_-100', float('nan')):.3f}"
        )
        rows.append(f"| {k} | {paper} | {ours} | {seeds} | {extra} | {TARGET.get(k, '–')} |")
    return rows


def _our_rl2_and_baselines() -> list[str]:
    """Our RL² and tuned-baseline numbers for the k = 5 cells, read from their result files."""
    out = []
    rl2 = ROOT / "docs" / "results" / "rl2.md"
    if rl2.exists():
        rows = [ln for ln in rl2.read_text().splitlines() if ln.startswith("| bandit-k5-n")]
        if rows:
            found = "; ".join(f"{r.split('|')[1].strip()}: {r.split('|')[4].strip()}" for r in rows)
            out.append(f"Our RL² (`docs/results/rl2.md`, every measurement listed there): {found}.")
    base = ROOT / "docs" / "results" / "rl2_baselines.md"
    if base.exists():
        cells = []
        for n in (10, 100):
            for ln in base.read_text().splitlines():
                parts = [c.strip() for c in ln.split("|")]
                if len(parts) > 4 and parts[1] == f"n={n}, k=5" and parts[2] != "Random":
                    cells.append(f"n={n} {parts[2]} {parts[4]}")
        if cells:
            out.append("Our tuned baselines (`docs/results/rl2_baselines.md`, 1000 test bandits): "
                       + "; ".join(cells) + ".")  # fmt: skip
    return out


def _acceptance(acc, spd, ban) -> list[str]:
    """The issue's acceptance criteria, each met or missed, with the measured number."""
    out = ["## Acceptance (issue #4) at a glance", "",
           "The 2D-navigation and speed lines below are for `MAMLConfig`'s defaults (the PyTorch "
           "reimplementation's settings). The configuration of the paper's own code "
           "(`benchmarks/maml_nav_paper.py`) meets the 0- and 1-step targets and misses the "
           "2-step one: see the dated sections \"Paper configuration\" and \"What the paper "
           "configuration shows\" further down.", ""]  # fmt: skip
    if acc:
        m = [x["mean"] for x in acc["per_step"]]
        checks = [
            ("return after 0 steps about -40 (±5)", abs(m[0] + 40) <= 5, m[0], -40.41),
            ("return after 1 step >= -13", m[1] >= -13, m[1], -11.68),
            ("return after 2 steps >= -5", m[2] >= -5, m[2], -3.33),
        ]
        for text, ok, ours, paper in checks:
            out.append(f"- 2D navigation, {text}: **{'met' if ok else 'missed'}** "
                       f"(ours {ours:.2f}, paper {paper:.2f}).")  # fmt: skip
    if spd:
        ok = spd["total_s"] < 90
        out.append(f"- Speed, full 500-iteration run < 90 s: **{'met' if ok else 'missed'}** "
                   f"({spd['total_s']:.0f} s; {spd['per_iteration_ms']:.0f} ms per iteration, "
                   f"{spd['env_steps_per_s']:,.0f} env steps/s).")  # fmt: skip
    if ban:
        out.append("- Bandits k = 5, n = 10 and 100: reported below next to RL² and the "
                   "baselines (MAML with the paper's estimator stays at chance; the DiCE and "
                   "ProMP estimators adapt, well below RL² and Gittins).")  # fmt: skip
    out.append("- Correctness test of the second-order meta-gradient against finite differences "
               "(and first-order differing): `tests/test_maml.py`, passing.")  # fmt: skip
    return out + [""]


def append_accuracy(acc: dict) -> None:
    """Append this accuracy run to docs/results/maml.md as a dated section (kept even when
    ``report`` cannot be regenerated because other parts' JSON files are missing)."""
    lines = [
        f"## 2D navigation run of {acc['date']} (`loss_averaging={acc['loss_averaging']}`)", "",
        f"{acc['seeds']} training seeds x {acc['iterations']} meta-iterations, meta-test on the "
        f"{acc['num_tasks']} held-out tasks, 2 evaluation seeds per trained seed, "
        f"{acc.get('eval_trajectories', 20)} trajectories "
        "per step (lr 0.1 then 0.05); ± = 95% t-interval across trained seeds.", "",
    ]  # fmt: skip
    lines += _nav_table(acc)
    refs = acc.get("references_per_episode", {})
    if refs:
        lines += ["", "References (return of one episode): " + "; ".join(
            f"{n} {_fmt(v['mean'], v['ci95'])}" for n, v in refs.items()) + "."]  # fmt: skip
    lines += ["", f"Command: `.venv/bin/python benchmarks/maml_nav.py accuracy` (= "
              f"`{acc['command']}`; CLI: `adaptrl train maml --env point-nav --iterations "
              f"{acc['iterations']} --num-seeds {acc['seeds']} --eval-seeds 2"
              f"{_pinned_flags(acc)}`). Machine: {acc['cpu']}; {acc['versions']}. Wall-clock "
              f"{acc['wall_s']:.0f} s (load average {acc['load_before']:.2f} before, "
              f"{acc['load_after']:.2f} after)."]  # fmt: skip
    append_section(REPORT, "\n".join(lines))


def _pinned_flags(acc: dict) -> str:
    """CLI flags that reproduce a saved run whose settings were defaults that changed since
    (runs saved before these fields were recorded used 20 trajectories and episode averaging)."""
    now = maml.MAMLConfig()
    then = {"eval_trajectories": acc.get("eval_trajectories", 20),
            "loss_averaging": acc.get("loss_averaging", "episodes")}  # fmt: skip
    return "".join(f" --maml.{k.replace('_', '-')} {v}" for k, v in then.items()
                   if getattr(now, k) != v)  # fmt: skip


def report() -> str:
    def load(name):
        p = OUT / f"{name}.json"
        return json.loads(p.read_text()) if p.exists() else None

    acc, spd, ban = load("accuracy"), load("speed"), load("bandits")
    lines = ["# MAML (Finn et al. 2017): 2D navigation, speed, bandits", ""]
    lines += [
        "Generated by `benchmarks/maml_nav.py` (`report` assembles the saved parts). "
        "Implementation: `adaptrl/algos/maml.py`; defaults = the public PyTorch "
        "reimplementation's 2D-navigation settings (20 tasks x 20 trajectories x H = 100, 64-64 "
        "tanh Gaussian policy, one inner VPG step with lr 0.1 on the linear feature baseline, "
        "TRPO max-KL 0.01, 10 CG iterations, damping 1e-5, 15 line-search steps x 0.8, "
        "gamma 0.99, GAE lambda 1.0, exact second-order meta-gradient).",
        "",
    ]
    lines += _acceptance(acc, spd, ban)
    if acc:
        lines += ["## 2D navigation (dense, H = 100): return after k inner steps", ""]
        lines += [
            f"{acc['seeds']} training seeds (0, 1, 2; vmapped in one process) x "
            f"{acc['iterations']} meta-iterations; meta-test on the benchmark's "
            f"{acc['num_tasks']} held-out tasks (`adaptrl.make('point-nav').test_tasks`, split "
            "seed 0), 2 evaluation seeds per trained seed; each entry is the mean return of 20 "
            "trajectories after k steps (step size 0.1 for the first step, 0.05 after, as in the "
            "paper). ± = 95% t-interval across the 3 trained seeds (the unit of replication; "
            "t = 4.30 with 2 degrees of freedom). The median is over all seed x task entries; the "
            "last column is the share of those entries below -100 (an adapted policy that runs "
            "away from the goal scores down to about -720).",
            "",
        ]
        lines += _nav_table(acc)
        refs = acc.get("references_per_episode", {})
        if refs:
            lines += ["", "References on the same 40 tasks (return of one episode): " + "; ".join(
                f"{n} {_fmt(v['mean'], v['ci95'])}" for n, v in refs.items()) + "."]  # fmt: skip
        norm = load("accuracy_normalized")
        if norm:
            lines += [
                "",
                "Variant, actions in [-1, 1] units (`--maml.normalize-actions`, as the original "
                "MAML code's `normalize(env)`; otherwise identical, same seeds, "
                f"{norm['wall_s']:.0f} s):",
                "",
            ]
            lines += _nav_table(norm)
        lines += [
            "",
            f"Command: `.venv/bin/python benchmarks/maml_nav.py accuracy` "
            f"(= `{acc['command']}` with the defaults of {acc['date'][:10]}; the CLI equivalent, "
            f"which pins them, is `adaptrl train maml --env point-nav "
            f"--iterations {acc['iterations']} --num-seeds {acc['seeds']} --eval-seeds 2"
            f"{_pinned_flags(acc)}`; add `--maml.normalize-actions` for the variant). "
            f"Wall-clock {acc['wall_s']:.0f} s for training all {acc['seeds']} seeds and the "
            f"meta-test (load average {acc['load_before']:.2f} before, "
            f"{acc['load_after']:.2f} after); {acc['date']}.",
            "",
        ]
    if spd:
        lines += ["## Speed: one full 500-meta-iteration run (one seed)", ""]
        lines += [
            "| | value |",
            "|---|---:|",
            f"| compile (trace + XLA) | {spd['compile_s']:.1f} s |",
            f"| {spd['iterations']} meta-iterations | {spd['run_s']:.1f} s |",
            f"| **total** | **{spd['total_s']:.1f} s** (target < 90 s) |",
            f"| time per meta-iteration | {spd['per_iteration_ms']:.0f} ms |",
            f"| of which sampling (2 x 400 episodes x 100 steps, baselines, inner steps) | "
            f"{spd['collect_ms']:.0f} ms |",
            f"| env steps per meta-iteration | {spd['env_steps'] // spd['iterations']:,} |",
            f"| env steps / s (whole update) | {spd['env_steps_per_s']:,.0f} |",
            f"| first-order MAML, time per meta-iteration (for comparison) | "
            f"{spd['first_order_per_iteration_ms']:.0f} ms |",
            "",
            f"Command: `.venv/bin/python benchmarks/maml_nav.py speed`. Machine: {spd['cpu']}, "
            f"{spd['backend']} backend; {spd['versions']}. Load average {spd['load_before']:.2f} "
            f"before, {spd['load_after']:.2f} after; {spd['date']}. Post-update training return "
            f"at the end of this run: {spd['curve'][-1]['post_update_return']:.2f}.",
            "",
        ]
    if ban:
        lines += ["## Bernoulli bandits (k = 5): total reward per trial, next to RL² and baselines",
                  ""]  # fmt: skip
        lines += [
            "Protocol: the shared trial protocol (`meta_test`, 1000 held-out bandits, n pulls). "
            "MAML spends the first n/2 pulls with its meta-learned policy, takes one "
            "policy-gradient step on them (lr 0.5), and pulls n/2 more times with the adapted "
            "policy; it was meta-trained for exactly that (20 tasks x n/2 pre-update pulls, "
            "500 meta-iterations; "
            "32-32 policy, gamma 0.95, the reimplementation's bandit settings except tanh "
            "for ReLU: our bandit observes a constant 0, which leaves a ReLU net with zero biases "
            "dead, and MAML measured at chance with it). "
            "3 training seeds x 1 evaluation seed; ± = 95% CI across seeds for MAML, over "
            "bandits for the references. In parentheses: reward of the first + second half.",
            "",
            "| cell | MAML (paper estimator, TRPO) | MAML, DiCE estimator (TRPO) | ProMP (PPO) | "
            "random | oracle (best arm) | RL² paper | Gittins paper | UCB1 paper | TS paper |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        pub = {10: (6.7, 6.6, 6.7, 5.7), 100: (78.7, 78.3, 78.0, 74.7)}

        def cell_fmt(c):
            if not c:
                return "–"
            return f"{_fmt(*c['trial'])} ({c['first_half']:.2f} + {c['second_half']:.2f})"

        for name, cell in ban["cells"].items():
            n = int(name.split("-n")[1])
            p = pub[n]
            lines.append(
                f"| n={n} | {cell_fmt(cell.get('maml'))} | {cell_fmt(cell.get('maml-dice'))} | "
                f"{cell_fmt(cell.get('promp'))} | {_fmt(*cell['random']['trial'])} | "
                f"{_fmt(*cell['oracle']['trial'])} | {p[0]} | {p[1]} | {p[2]} | {p[3]} |"
            )
        lines += ["", *_our_rl2_and_baselines()]
        lines += [
            "",
            "Command: `.venv/bin/python benchmarks/maml_nav.py bandits`; wall-clock "
            + ", ".join(
                f"{k} {sum(v for kk, v in c.items() if kk.endswith('wall_s')):.0f} s"
                for k, c in ban["cells"].items()
            )
            + f"; {ban['date']}.",
            "",
        ]
    lines += NOTES.splitlines()
    lines += ["", APPENDED_MARKER, ""]
    # Sections appended by other benchmark parts (append_section) follow the marker; keep them.
    kept = ""
    if REPORT.exists():
        old = REPORT.read_text()
        if APPENDED_MARKER in old:
            kept = old.split(APPENDED_MARKER, 1)[1].lstrip("\n")
    text = "\n".join(lines) + "\n" + kept
    atomic_write_text(REPORT, text)
    print(text)
    print(f"wrote {REPORT}")
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("part", choices=["speed", "accuracy", "bandits", "report", "all"])
    p.add_argument("--quick", action="store_true", help="a few iterations: smoke test only")
    a = p.parse_args(argv)
    its = 3 if a.quick else 500
    print("command:", shlex.join([sys.executable, *sys.argv]), "| load", os.getloadavg()[0])
    parts = ["speed", "accuracy", "bandits"] if a.part == "all" else [a.part]
    for part in parts:
        suffix = "_quick" if a.quick else ""
        if part == "speed":
            save("speed" + suffix, speed(its, a.quick))
        elif part == "accuracy":
            acc = accuracy(its, 3, a.quick)
            save("accuracy" + suffix, acc)
            if not a.quick:
                append_accuracy(acc)
        elif part == "bandits":
            save("bandits" + suffix, bandits(its, 3, a.quick))
        elif part == "report":
            report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
