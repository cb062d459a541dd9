"""RL² training throughput: env steps per second of the jitted update, per bandit/MDP cell.

Times ``update`` (collect trials + GAE + PPO epochs, seeds vmapped) alone, after compilation,
with the per-cell settings of ``benchmarks/rl2_tables.py``; also times trial collection alone to
show the split. No Python work between calls, so this is the rate the training loop approaches
on a quiet machine (the tables' "env steps/s" also counts logging and whatever else shares the
cores).

    python benchmarks/rl2_throughput.py                      # the bandit cells
    python benchmarks/rl2_throughput.py --cells bandit-k5-n10 tabular-mdp-n10 --repeats 20
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import adaptrl
from adaptrl.algos import rl2
from adaptrl.rollout.trial import run_trial

sys.path.insert(0, str(Path(__file__).parent))
from _report import append_section  # noqa: E402
from rl2_tables import CELL_SETTINGS  # noqa: E402

BANDITS = [f"bandit-k{k}-n{n}" for n in (10, 100, 500) for k in (5, 10, 50)]


def _time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best


def measure(cell: str, seeds: int, repeats: int) -> dict:
    bench = adaptrl.make(cell, num_test_tasks=2)
    _, overrides = CELL_SETTINGS.get(cell, (0, {}))
    config = dataclasses.replace(rl2.RL2Config(), **overrides)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    state = jax.vmap(lambda k: rl2.init(k, bench, config, 100))(keys)
    update = jax.jit(jax.vmap(rl2.make_update(bench, config, 100)))

    def collect(params, key):
        k_tasks, k_trials = jax.random.split(key)
        n = config.num_trials
        tasks = jax.vmap(bench.sample_train_task)(jax.random.split(k_tasks, n))
        agent = rl2.make_agent(params, bench.env, config)
        return jax.vmap(lambda t, k: run_trial(bench.env, agent, t, k, bench.episodes_per_trial))(
            tasks, jax.random.split(k_trials, n)
        )

    t_update = _time(lambda s: update(s)[0], state, repeats=repeats)
    t_collect = _time(jax.jit(jax.vmap(collect)), state.params, keys, repeats=repeats)
    steps = seeds * rl2.env_steps_per_update(bench, config)
    return {"cell": cell, "steps": steps, "update_ms": 1e3 * t_update,
            "collect_ms": 1e3 * t_collect, "steps_per_s": steps / t_update,
            "config": {k: v for k, v in overrides.items()}}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", nargs="+", default=BANDITS)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default="docs/results/rl2.md")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    load0 = os.getloadavg()
    rows = []
    for cell in a.cells:
        r = measure(cell, a.seeds, a.repeats)
        print(f"{cell}: {r['steps_per_s']:.3g} env steps/s (update {r['update_ms']:.1f} ms, "
              f"collect {r['collect_ms']:.1f} ms)", flush=True)  # fmt: skip
        rows.append(r)
    load1 = os.getloadavg()
    lines = [
        f"## Training throughput, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python benchmarks/rl2_throughput.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; Python "
        f"{platform.python_version()}, jax {jax.__version__}; load average {load0[0]:.2f} "
        f"before, {load1[0]:.2f} after. Jitted update (trial collection + GAE + PPO epochs) "
        f"with each cell's `CELL_SETTINGS`, {a.seeds} seeds vmapped, best of 3 × {a.repeats} "
        "calls after compilation. Target: 300k env steps/s on the bandits.",
        "",
        "| cell | env steps per update | update ms | of which collection ms | env steps/s "
        "| target |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        ok = "met" if r["steps_per_s"] >= 3e5 else "**missed**"
        lines.append(f"| {r['cell']} | {r['steps']:,} | {r['update_ms']:.1f} | "
                     f"{r['collect_ms']:.1f} | {r['steps_per_s']:.3g} | {ok} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_write:
        append_section(a.out, text)


if __name__ == "__main__":
    main()
