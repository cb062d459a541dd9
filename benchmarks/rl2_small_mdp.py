"""RL² on a small random tabular MDP: does the MDP path learn at all, at a budget a CPU affords?

The RL² Table 2 cells (|S| = 10, |A| = 5) stayed at random's level in our runs of up to 15M env
steps per seed (docs/notes.md). This check shrinks the MDP (default |S| = 2, |A| = 2, T = 5 steps,
10 episodes per trial; same task prior: mu(s, a) ~ N(1, 1), unit reward noise, flat Dirichlet
transitions) and compares, on held-out tasks, RL² with memory against the same network with its
memory wiped every step (which cannot beat random in expectation: every fixed policy earns 1 per
step on average over tasks), random, PSRL and the oracle that is told the task.

    python benchmarks/rl2_small_mdp.py                       # 400 updates, 3 seeds
    python benchmarks/rl2_small_mdp.py --states 3 --actions 3 --iterations 800
    python benchmarks/rl2_small_mdp.py --set separate_value=true --no-ablation   # a variant
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

from adaptrl.algos import rl2
from adaptrl.baselines.oracle import oracle
from adaptrl.baselines.psrl import psrl
from adaptrl.baselines.random import random_agent
from adaptrl.envs.tabular_mdp import TabularMDP, sample_tabular_mdp_task
from adaptrl.eval.protocol import meta_test
from adaptrl.eval.stats import mean_ci
from adaptrl.tasks.benchmark import Benchmark
from adaptrl.tasks.distribution import ContinuousTasks, split_tasks
from adaptrl.utils.overrides import parse_overrides

sys.path.insert(0, str(Path(__file__).parent))
from _report import append_section, cpu_model  # noqa: E402

# The bandit test's recipe (tests/test_rl2.py), which learns 2-armed bandits in 80 updates.
CONFIG = rl2.RL2Config(hidden_size=32, embed_sizes=(32,), num_trials=128, num_minibatches=8,
                       ppo_epochs=2, gae_lambda=0.3, entropy_coef=0.003,
                       learning_rate=3e-3)  # fmt: skip


def small_mdp(states: int, actions: int, steps: int, episodes: int, test_tasks: int) -> Benchmark:
    sampler = functools.partial(sample_tabular_mdp_task, num_states=states, num_actions=actions)
    dist = ContinuousTasks(sampler, "mu~N(1,1), P~Dir(1)")
    name = f"tabular-mdp-s{states}a{actions}t{steps}-n{episodes}"
    split = split_tasks(dist, seed=0, num_test_tasks=test_tasks)
    return Benchmark(name, TabularMDP(states, actions, steps), split, episodes,
                     success_defined=False)  # fmt: skip


def train_and_test(bench: Benchmark, config: rl2.RL2Config, iterations: int, seed: int):
    state = rl2.init(jax.random.PRNGKey(seed), bench, config, iterations)
    update = jax.jit(rl2.make_update(bench, config, iterations))
    for _ in range(iterations):
        state, _ = update(state)
    agent = rl2.make_agent(state.params, bench.env, config)
    return float(meta_test(bench, [agent], seeds=[seed]).trial_returns.mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--states", type=int, default=2)
    p.add_argument("--actions", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="steps per episode")
    p.add_argument("--episodes", type=int, default=10, help="episodes per trial")
    p.add_argument("--iterations", type=int, default=400)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--test-tasks", type=int, default=500)
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="RL2Config fields changed from CONFIG (both RL² rows)")
    p.add_argument("--no-ablation", action="store_true",
                   help="skip training the memory-wiped ablation (half the time)")
    p.add_argument("--out", default="docs/results/rl2.md")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    bench = small_mdp(a.states, a.actions, a.steps, a.episodes, a.test_tasks)
    config = dataclasses.replace(CONFIG, **parse_overrides(a.set, rl2.RL2Config))
    t0 = time.perf_counter()
    configs = {"RL²": config}
    if not a.no_ablation:
        configs["RL², memory wiped every step"] = dataclasses.replace(config, memory=False)
    scores = {name: [] for name in configs}
    for seed in range(a.seeds):
        for name, cfg in configs.items():
            scores[name].append(train_and_test(bench, cfg, a.iterations, seed))
            print(f"seed {seed} {name}: {scores[name][-1]:.2f}", flush=True)
    train_s = time.perf_counter() - t0
    refs = {}
    for agent in (random_agent(bench.env), psrl(bench.env), oracle(bench)):
        refs[agent.name] = meta_test(bench, [agent], seeds=[0]).trial_returns.reshape(-1)
    rows = []
    for name, vals in scores.items():
        ci = mean_ci(np.asarray(vals))
        m, h = ci.mean, ci.half_width
        per_seed = ", ".join(f"{v:.2f}" for v in vals)
        rows.append(f"| {name} | {m:.2f} ± {h:.2f} | {per_seed} |")
    for name, r in refs.items():
        ci = mean_ci(r)
        m, h = ci.mean, ci.half_width
        rows.append(f"| {name} (reference) | {m:.2f} ± {h:.2f} | over tasks |")
    steps = a.iterations * config.num_trials * bench.steps_per_trial
    text = "\n".join([
        f"## Small-MDP sanity check, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python benchmarks/rl2_small_mdp.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {platform.machine()}, {cpu_model()}, no GPU; Python "
        f"{platform.python_version()}, jax {jax.__version__}. `{bench.name}`: |S| = {a.states}, "
        f"|A| = {a.actions}, {a.steps} steps per episode, {a.episodes} episodes per trial, the "
        f"RL² MDP prior. {a.iterations} updates ({steps:,} env steps) per seed with "
        f"`{config}`; total reward per trial on {a.test_tasks} held-out tasks; RL² rows: mean ± "
        f"95% t-interval over {a.seeds} training seeds; references: over tasks. Training and "
        f"meta-test wall-clock {train_s:.0f} s.",
        "",
        "| agent | total reward per trial | per seed |",
        "|---|---:|---|",
        *rows,
    ]) + "\n"  # fmt: skip
    print(text)
    if not a.no_write:
        append_section(a.out, text)


if __name__ == "__main__":
    main()
