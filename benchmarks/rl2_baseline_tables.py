"""Reproduce the *baseline* columns of RL² Tables 1 and 2 (Duan et al. 2016).

Table 1 (Bernoulli bandits, 9 cells of (n pulls, k arms)): Random, Gittins, Thompson sampling,
UCB1, epsilon-greedy, Greedy. Table 2 (random tabular MDPs, n = 10..100 episodes): Random, PSRL.
Every number is the mean total reward per trial over the benchmark's 1000 held-out test tasks
(one evaluation seed), with a 95% confidence half-width over tasks.

The paper tuned its bandit baselines per cell with the true prior. Here the hyperparameters
(UCB1's c, epsilon, the Gittins discount) are tuned per cell over a small grid on *training*
tasks drawn with ``benchmark.sample_train_task`` (never the test tasks), with common random
numbers across grid values; the tuned values are printed. PSRL and the other agents use the true
prior and have nothing to tune.

Usage::

    .venv/bin/python benchmarks/rl2_baseline_tables.py            # full run, writes the report
    .venv/bin/python benchmarks/rl2_baseline_tables.py --quick    # smoke test, no report
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import adaptrl
from adaptrl.baselines import bandits
from adaptrl.baselines.gittins import gittins_table
from adaptrl.baselines.psrl import psrl
from adaptrl.baselines.random import random_agent
from adaptrl.rollout.trial import Agent, run_trial
from adaptrl.tasks.benchmark import Benchmark

sys.path.insert(0, str(Path(__file__).parent))
from _report import cpu_model  # noqa: E402

try:  # the shared meta-test protocol (preferred, so every table is produced the same way)
    from adaptrl.eval.protocol import meta_test
except ImportError:  # pragma: no cover - fallback while the protocol is not available
    meta_test = None

REPORT = Path(__file__).resolve().parents[1] / "docs" / "results" / "rl2_baselines.md"

# RL² Table 1: (n, k) -> published baseline means.
PUBLISHED_BANDIT: dict[tuple[int, int], dict[str, float]] = {
    (10, 5): dict(Random=5.0, Gittins=6.6, TS=5.7, UCB1=6.7, eps_greedy=6.6, Greedy=6.6),
    (10, 10): dict(Random=5.0, Gittins=6.6, TS=5.5, UCB1=6.7, eps_greedy=6.6, Greedy=6.6),
    (10, 50): dict(Random=5.1, Gittins=6.5, TS=5.2, UCB1=6.6, eps_greedy=6.5, Greedy=6.5),
    (100, 5): dict(Random=49.9, Gittins=78.3, TS=74.7, UCB1=78.0, eps_greedy=75.4, Greedy=74.8),
    (100, 10): dict(Random=49.9, Gittins=82.8, TS=76.7, UCB1=82.4, eps_greedy=77.4, Greedy=77.1),
    (100, 50): dict(Random=49.8, Gittins=85.2, TS=64.5, UCB1=84.3, eps_greedy=78.3, Greedy=78.0),
    (500, 5): dict(
        Random=249.8, Gittins=405.8, TS=402.0, UCB1=405.8, eps_greedy=388.2, Greedy=380.6
    ),
    (500, 10): dict(
        Random=249.0, Gittins=437.8, TS=429.5, UCB1=437.1, eps_greedy=408.0, Greedy=395.0
    ),
    (500, 50): dict(
        Random=249.6, Gittins=463.7, TS=427.2, UCB1=457.6, eps_greedy=413.6, Greedy=402.8
    ),
}
# RL² Table 2: n -> published means.
PUBLISHED_MDP: dict[int, dict[str, float]] = {
    10: dict(Random=100.1, PSRL=138.1),
    25: dict(Random=250.2, PSRL=408.8),
    50: dict(Random=499.7, PSRL=904.4),
    75: dict(Random=749.9, PSRL=1417.1),
    100: dict(Random=999.4, PSRL=1939.5),
}

# Tuning grids (small on purpose: the paper tuned too, and the optimum is flat).
UCB_C_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.414)
EPS_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
GITTINS_DISCOUNT_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
GITTINS_HORIZON = 500  # one table per discount serves every n <= 500

TRAIN_KEY, TEST_SEEDS = 2016, (0,)


@dataclasses.dataclass
class Row:
    table: str  # "bandit" or "mdp"
    cell: str  # "n=10, k=5" / "n=10"
    agent: str
    published: float
    mean: float
    ci: float
    tolerance: float  # absolute
    hyper: str = ""

    @property
    def passed(self) -> bool:
        return abs(self.mean - self.published) <= self.tolerance


def mean_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and 95% normal-approximation half-width of a 1-D sample."""
    x = np.asarray(x, np.float64).ravel()
    return float(x.mean()), float(1.96 * x.std(ddof=1) / math.sqrt(x.size))


def tolerance(published: float, n: int, table: str) -> float:
    """n = 10 bandit rows: +-0.15 absolute; larger bandit rows and all MDP rows: 3%."""
    if table == "bandit" and n == 10:
        return 0.15
    return 0.03 * published


def test_returns(bench: Benchmark, agent: Agent, num_tasks: int | None) -> np.ndarray:
    """(tasks,) total trial return on the held-out test tasks, seed 0."""
    tasks = bench.test_tasks
    if num_tasks is not None:
        tasks = jax.tree_util.tree_map(lambda x: x[:num_tasks], tasks)
    if meta_test is not None:
        result = meta_test(bench, agent, seeds=TEST_SEEDS, tasks=tasks)
        return np.asarray(result.returns).sum(axis=-1)[0]
    n = jax.tree_util.tree_leaves(tasks)[0].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(TEST_SEEDS[0]), n)
    fn = jax.jit(jax.vmap(lambda t, k: run_trial(bench.env, agent, t, k, bench.episodes_per_trial)))
    return np.asarray(fn(tasks, keys).episode_return).sum(axis=-1)


def train_tasks(bench: Benchmark, num_tasks: int):
    """Fresh training tasks (a key stream disjoint from the test split's), plus rollout keys."""
    k_tasks, k_roll = jax.random.split(jax.random.PRNGKey(TRAIN_KEY))
    tasks = jax.vmap(bench.sample_train_task)(jax.random.split(k_tasks, num_tasks))
    return tasks, jax.random.split(k_roll, num_tasks)


def tune(
    bench: Benchmark,
    make_agent: Callable[[Any], Agent],
    grid: list[Any],
    tasks,
    keys,
) -> tuple[int, list[float]]:
    """Index of the grid value with the best mean training return, and all the means.

    ``make_agent(param)`` is traced with ``param`` as a jit argument, so the whole grid shares one
    compilation; every grid value sees the same tasks and keys (common random numbers).
    """
    n = bench.episodes_per_trial

    @jax.jit
    def mean_return(param):
        agent = make_agent(param)
        trial = jax.vmap(lambda t, k: run_trial(bench.env, agent, t, k, n))(tasks, keys)
        return trial.episode_return.sum(axis=-1).mean()

    means = [float(mean_return(p)) for p in grid]
    return int(np.argmax(means)), means


def num_train_tasks(base: int, n: int) -> int:
    """Fewer tuning tasks for the long n = 500 trials: their relative noise is smaller."""
    return base if n <= 100 else max(base // 2, 1)


def gittins_array(discount: float) -> np.ndarray:
    """(H + 1, H + 1) float32 Gittins table with NaN (unreachable counts) replaced by 0."""
    return np.nan_to_num(gittins_table(discount, GITTINS_HORIZON), nan=0.0).astype(np.float32)


def bandit_cell(n: int, k: int, num_train: int, num_test: int | None) -> list[Row]:
    bench = adaptrl.make(f"bandit-k{k}-n{n}")
    pub = PUBLISHED_BANDIT[(n, k)]
    tasks, keys = train_tasks(bench, num_train_tasks(num_train, n))

    i_c, _ = tune(
        bench,
        lambda c: bandits.ucb1(k, c=c, prior=(1.0, 1.0)),
        [jnp.float32(c) for c in UCB_C_GRID],
        tasks,
        keys,
    )
    i_e, _ = tune(
        bench,
        lambda e: bandits.epsilon_greedy(k, epsilon=e),
        [jnp.float32(e) for e in EPS_GRID],
        tasks,
        keys,
    )
    tables = [gittins_array(g) for g in GITTINS_DISCOUNT_GRID]
    i_g, _ = tune(bench, lambda t: bandits.gittins_from_table(k, t), tables, tasks, keys)
    c, eps, gamma = UCB_C_GRID[i_c], EPS_GRID[i_e], GITTINS_DISCOUNT_GRID[i_g]

    agents = {
        "Random": (random_agent(bench.env), ""),
        "Gittins": (bandits.gittins(k, discount=gamma, horizon=GITTINS_HORIZON), f"γ={gamma}"),
        "TS": (bandits.thompson_sampling(k), ""),
        "UCB1": (bandits.ucb1(k, c=c, prior=(1.0, 1.0)), f"c={c}"),
        "eps_greedy": (bandits.epsilon_greedy(k, epsilon=eps), f"ε={eps}"),
        "Greedy": (bandits.greedy(k), ""),
    }
    rows = []
    for name, (agent, hyper) in agents.items():
        mean, ci = mean_ci(test_returns(bench, agent, num_test))
        tol = tolerance(pub[name], n, "bandit")
        rows.append(Row("bandit", f"n={n}, k={k}", name, pub[name], mean, ci, tol, hyper))
        print(f"  {rows[-1].cell:<12} {name:<10} {fmt_row(rows[-1])}", flush=True)
    return rows


def mdp_cell(n: int, num_test: int | None) -> list[Row]:
    bench = adaptrl.make(f"tabular-mdp-n{n}")
    rows = []
    for name, agent in (("Random", random_agent(bench.env)), ("PSRL", psrl(bench.env))):
        mean, ci = mean_ci(test_returns(bench, agent, num_test))
        pub = PUBLISHED_MDP[n][name]
        rows.append(Row("mdp", f"n={n}", name, pub, mean, ci, tolerance(pub, n, "mdp")))
        print(f"  {rows[-1].cell:<12} {name:<10} {fmt_row(rows[-1])}", flush=True)
    return rows


def fmt_row(r: Row) -> str:
    digits = 2 if r.published < 20 else 1
    mark = "pass" if r.passed else "FAIL"
    return (
        f"published {r.published:>8.{digits}f} | ours {r.mean:>8.{digits}f} ± {r.ci:<6.{digits}f}"
        f" | diff {r.mean - r.published:+8.{digits}f} (tol ±{r.tolerance:.{digits}f}) {mark}"
        + (f" | {r.hyper}" if r.hyper else "")
    )


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| cell | agent | published | ours ± 95% CI | diff | tolerance | within | tuned |",
        "|---|---|---:|---:|---:|---:|:---:|---|",
    ]
    for r in rows:
        d = 2 if r.published < 20 else 1
        lines.append(
            f"| {r.cell} | {r.agent} | {r.published:.{d}f} | {r.mean:.{d}f} ± {r.ci:.{d}f} | "
            f"{r.mean - r.published:+.{d}f} | ±{r.tolerance:.{d}f} | "
            f"{'yes' if r.passed else '**no**'} | {r.hyper} |"
        )
    return "\n".join(lines)


def environment_info() -> str:
    return (
        f"python {platform.python_version()}, jax {jax.__version__} "
        f"({jax.default_backend()} backend), {platform.platform()}, "
        f"{os.cpu_count()} CPU cores ({cpu_model()})"
    )


# Interpretation of the cells that miss (written after inspecting the results of this script).
NOTES = """\
- **n = 10 bandit rows.** A ±0.15 tolerance is at the noise level: our 95% half-width over 1000
  tasks is ±0.10-0.14, and the published numbers carry the same sampling error (the paper also
  used 1000 instances) plus rounding to 0.1. Evidence from this very table: ε-greedy tuned to
  ε = 0 *is* the Greedy policy, yet the two rows differ by up to ~0.1 because they consume the
  random stream differently. Near-greedy policies (Gittins, UCB1, ε-greedy, Greedy) all score
  6.65-6.8 here, at or slightly *above* the published 6.5-6.7; the small Gittins / ε-greedy
  excesses at k = 50 are of that kind.
- **Thompson sampling.** It matches the paper within 1.3% in every n >= 100 cell, and to 0.1 at
  k = 50, including the surprisingly low 64.5 (n = 100) and 427.2 (n = 500). With a uniform
  prior and 50 arms, TS keeps sampling untried arms (a Beta(1, 1) draw often beats a
  well-estimated good arm), so those published numbers are genuine TS behaviour, not a bug. At
  n = 10 our TS is above the published value (k = 5: 6.00 vs 5.7, about 5 of our standard
  errors); we can only guess at a different TS variant or prior in the paper for those cells.
- **Greedy / ε-greedy at n = 100 and 500** sit above the published values by up to 3%. We think
  this is because ours use the Beta(1, 1) posterior mean: an arm that just failed looks worse
  than an untried one (1/3 < 1/2), so it explores more than an empirical-mean greedy would.
- **PSRL at n = 10** is 2.8-3.4% below the published 138.1 (just inside or outside the 3% band,
  depending on the random stream; n >= 25 agree within 1.5%). On training
  tasks we tried other priors (Dirichlet 0.3 or 3, reward-prior variance 0.25, noise variance 4,
  prior mean 2); none beat the true prior (134.0 on 2000 training tasks), so the gap is not a
  prior mis-specification on our side. The paper gives no further details of its PSRL.
"""


def write_report(
    path: Path, rows: list[Row], command: str, wall: float, tables_s: float, num_train: int
) -> None:
    bandit = [r for r in rows if r.table == "bandit"]
    mdp = [r for r in rows if r.table == "mdp"]
    n_pass = sum(r.passed for r in rows)
    misses = "; ".join(
        f"{r.agent} ({r.cell}: {r.mean - r.published:+.2f})" for r in rows if not r.passed
    )
    text = f"""# RL² baseline tables (Duan et al. 2016, Tables 1 and 2): published vs ours

Generated by `benchmarks/rl2_baseline_tables.py`. Each cell is the mean total reward per trial on
the 1000 held-out test tasks of the benchmark (`adaptrl.make(name).test_tasks`, split seed 0),
evaluation seed {TEST_SEEDS[0]}, with a 95% confidence half-width over tasks. Tolerances: n = 10
bandit rows ±0.15 absolute; n = 100 / 500 bandit rows and all MDP rows ±3% of the published value.

**{n_pass} / {len(rows)} cells within tolerance.** Outside tolerance: {misses}.

Hyperparameters were tuned per cell on {num_train} *training* tasks
({num_train_tasks(num_train, 500)} for n = 500; `benchmark.sample_train_task`, key {TRAIN_KEY};
never the test tasks), one rollout per task, common random numbers across the grid:

- UCB1 c ∈ {list(UCB_C_GRID)}
- ε ∈ {list(EPS_GRID)}
- Gittins discount ∈ {list(GITTINS_DISCOUNT_GRID)}

The paper tuned its baselines per cell using the true prior.

Agents (`adaptrl.baselines`): Random = uniform arm/action; Gittins = Gittins index of the
Beta(1, 1)-Bernoulli arm for the tuned discount (calibration table, `baselines/gittins.py`);
TS = Thompson sampling with Beta(1, 1) prior; UCB1 = posterior mean + c·sqrt(ln t / (n_i + 2))
with Beta(1, 1) pseudo-counts (textbook UCB1, which must pull every arm once, cannot get
near the published 6.6 at n = 10, k = 50); ε-greedy / Greedy = posterior-mean greedy with
Beta(1, 1) prior and random tie-breaking; PSRL = posterior sampling (Dirichlet(1) transitions,
N(1, 1) mean-reward prior with unit noise), one sampled MDP per episode solved by backward
induction.

## Table 1: Bernoulli bandits

{markdown_table(bandit)}

## Table 2: random tabular MDPs (|S| = 10, |A| = 5, T = 10)

{markdown_table(mdp)}

## Notes on the misses

{NOTES}
## Run

- Command: `{command}`
- Environment: {environment_info()}
- Seeds: test rollouts `PRNGKey({TEST_SEEDS[0]})` split over tasks; tuning tasks and rollouts
  from `PRNGKey({TRAIN_KEY})`; test tasks from the registry's split seed 0.
- Wall-clock: {wall:.0f} s in total, including JIT compilation and {tables_s:.1f} s for the
  Gittins tables ({"computed" if tables_s > 1.0 else "read from the disk cache"}), on a
  machine shared with other jobs; run on {time.strftime("%Y-%m-%d")}.
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few tasks, no report (smoke test)")
    parser.add_argument("--num-train", type=int, default=2000, help="training tasks for tuning")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    num_train, num_test = (100, 100) if args.quick else (args.num_train, None)

    start = time.perf_counter()
    for g in GITTINS_DISCOUNT_GRID:  # computed once (seconds each) or read from the disk cache
        gittins_array(g)
    tables_s = time.perf_counter() - start
    print(
        f"Gittins tables for {len(GITTINS_DISCOUNT_GRID)} discounts: {tables_s:.1f} s", flush=True
    )
    rows: list[Row] = []
    print("RL² Table 1 baselines (Bernoulli bandits)", flush=True)
    for n in (10, 100, 500):
        for k in (5, 10, 50):
            rows += bandit_cell(n, k, num_train, num_test)
    print("RL² Table 2 baselines (tabular MDPs)", flush=True)
    for n in (10, 25, 50, 75, 100):
        rows += mdp_cell(n, num_test)
    wall = time.perf_counter() - start

    n_pass = sum(r.passed for r in rows)
    print(f"\n{n_pass}/{len(rows)} cells within tolerance; wall-clock {wall:.0f} s")
    print(environment_info())
    if not args.quick:
        extra = sys.argv[1:] if argv is None else argv
        command = shlex.join([".venv/bin/python", "benchmarks/rl2_baseline_tables.py", *extra])
        write_report(args.report, rows, command, wall, tables_s, num_train)
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
