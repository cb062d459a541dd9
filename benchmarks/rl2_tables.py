"""RL² on the RL² paper's Table 1 (bandits) and Table 2 (tabular MDPs) cells.

For each requested cell: meta-train RL² with several seeds vmapped in one process, meta-test each
trained agent on the benchmark's 1000 held-out tasks, and print ours next to the published RL²,
Gittins/UCB1/TS (bandits) or PSRL (MDPs) values. Appends a section per run to
``docs/results/rl2.md`` (never overwrites earlier sections).

    python benchmarks/rl2_tables.py --cells bandit-k5-n10 bandit-k10-n10 --seeds 3

Per-cell training settings live in ``CELL_SETTINGS``; ``--iterations`` overrides them.
``--select-every N`` also scores each seed every N updates on validation tasks drawn from the
training distribution and meta-tests each seed's best iterate beside its final one.
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
from adaptrl.eval.protocol import meta_test
from adaptrl.eval.stats import mean_ci
from adaptrl.utils.overrides import parse_overrides

sys.path.insert(0, str(Path(__file__).parent))
from _report import append_section, cpu_model  # noqa: E402

# Key of the validation tasks used by --select-every (the test split is drawn from split seed 0).
VALIDATION_KEY = 777

# Published values (Duan et al. 2016, Tables 1 and 2).
PUBLISHED = {
    "bandit-k5-n10": {"RL2": 6.7, "Gittins": 6.6, "UCB1": 6.7, "TS": 5.7},
    "bandit-k10-n10": {"RL2": 6.7, "Gittins": 6.6, "UCB1": 6.7, "TS": 5.5},
    "bandit-k50-n10": {"RL2": 6.8, "Gittins": 6.5, "UCB1": 6.6, "TS": 5.2},
    "bandit-k5-n100": {"RL2": 78.7, "Gittins": 78.3, "UCB1": 78.0, "TS": 74.7},
    "bandit-k10-n100": {"RL2": 83.5, "Gittins": 82.8, "UCB1": 82.4, "TS": 76.7},
    "bandit-k50-n100": {"RL2": 84.9, "Gittins": 85.2, "UCB1": 84.3, "TS": 64.5},
    "bandit-k5-n500": {"RL2": 401.6, "Gittins": 405.8, "UCB1": 405.8, "TS": 402.0},
    "bandit-k10-n500": {"RL2": 432.5, "Gittins": 437.8, "UCB1": 437.1, "TS": 429.5},
    "bandit-k50-n500": {"RL2": 438.9, "Gittins": 463.7, "UCB1": 457.6, "TS": 427.2},
    "tabular-mdp-n10": {"RL2": 156.2, "PSRL": 138.1},
    "tabular-mdp-n25": {"RL2": 445.7, "PSRL": 408.8},
    "tabular-mdp-n50": {"RL2": 936.1, "PSRL": 904.4},
    "tabular-mdp-n75": {"RL2": 1428.8, "PSRL": 1417.1},
    "tabular-mdp-n100": {"RL2": 1913.7, "PSRL": 1939.5},
}

# Training settings per cell (iterations, RL2Config overrides).
# Small bandit cells: a narrower GRU and 2 PPO epochs cut compute ~7x per env step; a large batch,
# low entropy bonus and GAE lambda 0.3 (the RL² paper's) give the near-optimal exploit phase.
_N10 = {"hidden_size": 64, "ppo_epochs": 2, "entropy_coef": 0.003, "num_trials": 512,
        "gae_lambda": 0.3}  # fmt: skip
# n = 100: same recipe with a longer discount, smaller minibatches and a higher (annealed) lr.
_N100 = {"hidden_size": 64, "ppo_epochs": 2, "num_trials": 256, "num_minibatches": 16,
         "learning_rate": 3e-3, "gamma": 0.995, "gae_lambda": 0.3,
         "entropy_coef": 0.001}  # fmt: skip
# MDPs: entropy 0.01 kept all 3 seeds above random (112.9 ± 6.1); 0.003 left one at random's
# level (108.4 ± 20.3), docs/results/rl2.md 2026-12-05.
_MDP = {"hidden_size": 64, "num_trials": 128, "num_minibatches": 8,
        "ppo_epochs": 2, "learning_rate": 3e-3, "gae_lambda": 0.3, "entropy_coef": 0.01,
        "separate_value": True}  # fmt: skip
CELL_SETTINGS: dict[str, tuple[int, dict]] = {
    "bandit-k5-n10": (1500, _N10),
    "bandit-k10-n10": (1500, _N10),
    "bandit-k50-n10": (2500, _N10),  # 1500 gave 6.64 (bar 6.65); 2500: 6.70 in 206 s
    # With the value on its own core: 77.49 ± 1.25 (bar 76.34) after 900 updates; the shared
    # core gave 76.21 ± 3.65 after 1800 (docs/results/rl2.md, 2026-12-05 07:42).
    "bandit-k5-n100": (900, {**_N100, "separate_value": True}),
    "bandit-k10-n100": (1800, _N100),  # 76.58 (bar 81.0); untried: separate_value
    "bandit-k50-n100": (1000, {"num_trials": 128, "gamma": 0.995, "hidden_size": 256}),
    "bandit-k5-n500": (1000, {"num_trials": 64, "gamma": 0.999}),
    "bandit-k10-n500": (1000, {"num_trials": 64, "gamma": 0.999}),
    "bandit-k50-n500": (1200, {"num_trials": 64, "gamma": 0.999, "hidden_size": 256}),
    # MDPs: the value gets its own network. With a shared core, the value loss (which Gaussian
    # reward noise keeps large) drowns the policy's gradient in the memory, and RL² stayed at
    # random's level; with separate_value it learns (docs/results/rl2.md, 2026-12-05: small-MDP
    # checks; on n = 10, 3 seeds x 1000 updates of _MDP: 112.9 ± 6.1 vs random 100.3). Far
    # more env steps are needed for the table's bar.
    "tabular-mdp-n10": (1000, _MDP),
    "tabular-mdp-n25": (1000, {**_MDP, "num_trials": 64}),
    "tabular-mdp-n50": (1000, {**_MDP, "num_trials": 64}),
}


def acceptance(cell: str, ours: float) -> tuple[float, bool]:
    """The issue's bar: n=10 bandits >= RL2 - 0.15; n=100 >= 97%; n=500 >= 95%; MDPs >= 97%."""
    pub = PUBLISHED[cell]["RL2"]
    if cell.startswith("bandit") and cell.endswith("-n10"):
        bar = pub - 0.15
    elif cell.endswith("-n500"):
        bar = 0.95 * pub
    else:
        bar = 0.97 * pub
    return bar, ours >= bar


def validation_tasks(bench, num_tasks: int):
    """Tasks drawn from the *training* distribution with a key of their own (never the test set)."""
    keys = jax.random.split(jax.random.PRNGKey(VALIDATION_KEY), num_tasks)
    return jax.vmap(bench.sample_train_task)(keys)


def keep_best(best, best_score, params, score):
    """Per seed (leading axis), keep ``params`` where ``score`` beats ``best_score``.

    ``best``/``params``: pytrees with a leading seed axis; scores: arrays of shape (seeds,).
    Returns ``(best, best_score, better)``; ties keep the earlier iterate."""
    better = np.asarray(score) > np.asarray(best_score)
    best = jax.tree_util.tree_map(
        lambda b, p: jax.numpy.where(better.reshape((-1,) + (1,) * (p.ndim - 1)), p, b),
        best, params)  # fmt: skip
    return best, np.where(better, score, best_score), better


def _seed_agents(params, bench, config, seeds: int, **kw) -> list:
    return [rl2.make_agent(jax.tree_util.tree_map(lambda x, i=i: x[i], params), bench.env, config,
                           **kw) for i in range(seeds)]  # fmt: skip


def run_cell(cell: str, seeds: int, iterations: int | None, overrides: dict,
             select_every: int = 0, select_tasks: int = 1000) -> dict:
    """Train ``seeds`` vmapped RL² agents on ``cell`` and meta-test them on its held-out tasks.

    With ``select_every > 0`` each seed's parameters are also scored every ``select_every``
    updates (and after the last) on ``select_tasks`` validation tasks from the training
    distribution; the best-scoring iterate of each seed is meta-tested too and reported beside
    the final one (the pass mark stays on the final iterate).
    """
    bench = adaptrl.make(cell)
    default_iters, cell_overrides = CELL_SETTINGS.get(cell, (800, {}))
    iters = iterations or default_iters
    config = dataclasses.replace(rl2.RL2Config(), **{**cell_overrides, **overrides})
    keys = jax.numpy.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    state = jax.vmap(lambda k: rl2.init(k, bench, config, iters))(keys)
    update = jax.jit(jax.vmap(rl2.make_update(bench, config, iters)))
    t0 = time.perf_counter()
    state, _ = update(state)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    val_tasks = validation_tasks(bench, select_tasks) if select_every > 0 else None
    best_params, best_score, best_iter, select_s, history = None, None, None, 0.0, []

    def score(params, done: int):
        nonlocal best_params, best_score, best_iter, select_s
        ts = time.perf_counter()
        res = meta_test(bench, _seed_agents(params, bench, config, seeds), seeds=list(range(seeds)),
                        tasks=val_tasks, task_batch_size=250)  # fmt: skip
        val = np.asarray(res.trial_returns.mean(axis=1))
        if best_score is None:
            best_params, best_score, best_iter = params, val, np.full(seeds, done)
        else:
            best_params, best_score, better = keep_best(best_params, best_score, params, val)
            best_iter = np.where(better, done, best_iter)
        history.append((done, val.round(2).tolist()))
        print(f"  {cell} validation after {done} updates: {val.round(2)}", flush=True)
        select_s += time.perf_counter() - ts

    for i in range(1, iters):
        state, metrics = update(state)
        if i % max(1, iters // 10) == 0:
            m = jax.device_get(metrics)
            print(f"  {cell} it {i}/{iters} trial_return {np.asarray(m['trial_return']).round(2)}"
                  f" ({time.perf_counter() - t0:.0f}s)", flush=True)  # fmt: skip
        if select_every > 0 and (i + 1) % select_every == 0 and i + 1 < iters:
            score(state.params, i + 1)
    if select_every > 0:
        score(state.params, iters)
    jax.block_until_ready(state)
    train_s = time.perf_counter() - t0 - select_s
    steps = iters * seeds * rl2.env_steps_per_update(bench, config)
    agents = _seed_agents(state.params, bench, config, seeds)
    t1 = time.perf_counter()
    res = meta_test(bench, agents, seeds=list(range(seeds)), task_batch_size=250)
    eval_s = time.perf_counter() - t1
    per_seed = res.trial_returns.mean(axis=1)
    ours = mean_ci(per_seed)
    # Also the argmax-action policy (memory still drives exploration); reported, never used for
    # the pass mark, which is judged on the sampled policy as in the paper.
    greedy_agents = _seed_agents(state.params, bench, config, seeds, deterministic=True)
    greedy = meta_test(bench, greedy_agents, seeds=list(range(seeds)), task_batch_size=250)
    greedy_ci = mean_ci(greedy.trial_returns.mean(axis=1))
    bar, ok = acceptance(cell, ours.mean)
    selected = {}
    if select_every > 0:
        sel = meta_test(bench, _seed_agents(best_params, bench, config, seeds),
                        seeds=list(range(seeds)), task_batch_size=250)  # fmt: skip
        sel_per_seed = sel.trial_returns.mean(axis=1)
        sel_ci = mean_ci(sel_per_seed)
        selected = {"selected_mean": sel_ci.mean, "selected_ci95": sel_ci.half_width,
                    "selected_per_seed": sel_per_seed.tolist(),
                    "selected_iters": best_iter.tolist(), "select_every": select_every,
                    "select_tasks": select_tasks, "validation": history,
                    "selected_pass": acceptance(cell, sel_ci.mean)[1]}  # fmt: skip
    return {**selected,
        "cell": cell, "iterations": iters, "seeds": seeds, "config": dataclasses.asdict(config),
        "per_seed": per_seed.tolist(), "mean": ours.mean, "ci95": ours.half_width,
        "bar": bar, "pass": ok, "greedy_mean": greedy_ci.mean, "greedy_ci95": greedy_ci.half_width,
        "train_s": train_s, "compile_s": compile_s, "eval_s": eval_s,
        "env_steps": steps, "steps_per_s": steps / train_s,
    }  # fmt: skip


def report(rows: list[dict], command: str, out: Path) -> str:
    lines = [
        f"## Run of {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {cpu_model()} ({_nproc()} cores), no GPU; Python "
        f"{platform.python_version()}, jax {jax.__version__}. Total reward per trial on the 1000 "
        "held-out tasks of each benchmark (split seed 0); ours = mean over training seeds of the "
        "per-seed mean, ± 95% t-interval across seeds.",
        "",
        "| cell | published RL² | others (published) | ours (RL²) | per seed | bar | pass | "
        "ours, argmax actions | train s | env steps/s |",
        "|---|---:|---|---:|---|---:|:---:|---:|---:|---:|",
    ]
    for r in rows:
        pub = PUBLISHED[r["cell"]]
        others = ", ".join(f"{k} {v}" for k, v in pub.items() if k != "RL2")
        lines.append(
            f"| {r['cell']} | {pub['RL2']} | {others} | {r['mean']:.2f} ± {r['ci95']:.2f} | "
            f"{', '.join(f'{x:.2f}' for x in r['per_seed'])} | {r['bar']:.2f} | "
            f"{'yes' if r['pass'] else '**no**'} | "
            f"{r['greedy_mean']:.2f} ± {r['greedy_ci95']:.2f} | "
            f"{r['train_s']:.0f} | {r['steps_per_s']:.3g} |"
        )
    lines.append("")
    for r in rows:
        cfg = {k: v for k, v in r["config"].items() if v != getattr(rl2.RL2Config(), k)}
        lines.append(f"- {r['cell']}: {r['iterations']} iterations, {r['seeds']} seeds, config "
                     f"changes {cfg or 'none'}; compile {r['compile_s']:.0f} s, meta-test "
                     f"{r['eval_s']:.0f} s.")  # fmt: skip
    for r in rows:
        if "selected_mean" in r:
            lines.append(
                f"- {r['cell']}, iterate chosen per seed on {r['select_tasks']} validation tasks "
                f"from the training distribution (scored every {r['select_every']} updates; "
                f"chosen after {r['selected_iters']} updates): held-out "
                f"**{r['selected_mean']:.2f} ± {r['selected_ci95']:.2f}** (per seed "
                f"{', '.join(f'{x:.2f}' for x in r['selected_per_seed'])}; bar {r['bar']:.2f}: "
                f"{'yes' if r['selected_pass'] else 'no'}). Validation scores: "
                + "; ".join(f"{d}: {v}" for d, v in r["validation"]) + "."
            )
    text = "\n".join(lines) + "\n\n"
    if not out.exists():
        out.write_text("# RL² on the RL² paper's tables\n\nGenerated by "
                       "`benchmarks/rl2_tables.py`; one section per run, newest last.\n\n")
    append_section(out, text)
    return text


def _nproc() -> int:
    import os

    return os.cpu_count() or 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", nargs="+", default=["bandit-k5-n10", "bandit-k10-n10",
                                                  "bandit-k50-n10"])  # fmt: skip
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--out", default="docs/results/rl2.md")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="override RL2Config fields for every cell, e.g. --set hidden_size=64")
    p.add_argument("--select-every", type=int, default=0, metavar="N",
                   help="also score every N updates on validation tasks from the training "
                        "distribution and meta-test each seed's best iterate (0 = off)")
    p.add_argument("--select-tasks", type=int, default=1000, metavar="M",
                   help="number of validation tasks for --select-every")
    a = p.parse_args()
    if a.select_every < 0 or a.select_tasks < 1:
        raise SystemExit("--select-every must be >= 0 and --select-tasks >= 1")
    overrides = parse_overrides(a.set, rl2.RL2Config)
    rows = []
    for cell in a.cells:
        if cell not in PUBLISHED:
            raise SystemExit(f"unknown cell {cell!r}; choose from {', '.join(PUBLISHED)}")
        r = run_cell(cell, a.seeds, a.iterations, overrides, a.select_every, a.select_tasks)
        print(f"{cell}: ours {r['mean']:.2f} ± {r['ci95']:.2f} (published RL² "
              f"{PUBLISHED[cell]['RL2']}, bar {r['bar']:.2f}: {'pass' if r['pass'] else 'FAIL'}),"
              f" argmax-action policy {r['greedy_mean']:.2f};"
              f" train {r['train_s']:.0f} s, {r['steps_per_s']:.3g} env steps/s", flush=True)
        if "selected_mean" in r:
            print(f"{cell}: iterate chosen on validation tasks (after {r['selected_iters']} "
                  f"updates): {r['selected_mean']:.2f} ± {r['selected_ci95']:.2f}", flush=True)
        rows.append(r)
    import sys

    command = "python benchmarks/rl2_tables.py " + " ".join(sys.argv[1:])
    text = report(rows, command, Path(a.out)) if not a.no_write else ""
    print(text)


if __name__ == "__main__":
    main()
