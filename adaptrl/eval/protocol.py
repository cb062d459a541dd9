"""The meta-test protocol, the same for every agent and every task family.

Given an agent and a benchmark, run one trial (``episodes_per_trial`` episodes, agent memory kept
across them) on each **held-out** task for each evaluation seed, and record per episode index the
return, the success flag, the length and the step of first success. From that one array the two
standard readings follow:

- *online* variant: the agent must do well from its first step; the score is the total return of
  the whole trial (the RL² table metric) and the curve shows how fast it improves;
- *episodic* variant ("explore k episodes, then exploit"): the score is the mean return of the
  episodes after the first ``exploration_episodes``.

For agents with an explicit adaptation step (``Agent.end_episode``, e.g. a gradient step), episode
0 is the *pre-adaptation* return and later episodes are *post-adaptation*.

Seeds: pass one agent (evaluation seeds only vary the randomness of acting and of the
environment) or one agent per seed (then seed ``i`` evaluates ``agents[i]``). Rows produced by the
same agent object form one replication group; confidence intervals treat distinct trained agents
as the unit of replication (see ``adaptrl.eval.stats.seed_task_ci``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from adaptrl.eval.stats import MeanCI, seed_task_ci
from adaptrl.rollout.trial import Agent, run_trial
from adaptrl.tasks.benchmark import Benchmark
from adaptrl.tasks.distribution import tree_index, tree_size

PyTree = Any


@dataclasses.dataclass
class MetaTestResult:
    """All numbers of one meta-test. Arrays have shape (seeds, tasks, episodes)."""

    env: str
    agent: str
    privileged: bool
    has_adaptation_step: bool
    success_defined: bool
    seeds: list[int]
    exploration_episodes: int
    returns: np.ndarray
    success: np.ndarray
    lengths: np.ndarray
    first_success_step: np.ndarray
    groups: list[int] = dataclasses.field(default_factory=list)
    wall_clock_s: float = 0.0
    # Only for meta-tests by a sample budget (MAML ``eval_samples > 0``), shape (seeds, tasks,
    # episodes): how many episodes each entry of ``returns`` averages, and whether the episode
    # cap stopped it before the budget was filled.
    episodes_used: np.ndarray | None = None
    budget_capped: np.ndarray | None = None

    def __post_init__(self):
        if not self.groups:
            self.groups = [0] * len(self.seeds)

    def _ci(self, values) -> MeanCI:
        return seed_task_ci(values, self.groups)

    @property
    def num_episodes(self) -> int:
        return int(self.returns.shape[-1])

    @property
    def trial_returns(self) -> np.ndarray:
        """(seeds, tasks) total return of each trial (the online / RL² table metric)."""
        return self.returns.sum(axis=-1)

    def curve(self) -> list[MeanCI]:
        """Mean return of each episode index with a 95% CI (the adaptation curve)."""
        return [self._ci(self.returns[..., e]) for e in range(self.num_episodes)]

    def success_curve(self) -> list[MeanCI]:
        return [self._ci(self.success[..., e]) for e in range(self.num_episodes)]

    def exploit_returns(self) -> np.ndarray:
        """(seeds, tasks) mean return of the episodes after the exploration episodes."""
        k = min(self.exploration_episodes, self.num_episodes - 1)
        return self.returns[..., k:].mean(axis=-1)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as plain floats: each ``{"mean", "ci95", "n"}``."""

        def pack(ci: MeanCI) -> dict[str, float]:
            return {"mean": ci.mean, "ci95": ci.half_width, "n": ci.n}

        out: dict[str, Any] = {
            "trial_return": pack(self._ci(self.trial_returns)),
            "first_episode_return": pack(self._ci(self.returns[..., 0])),
            "last_episode_return": pack(self._ci(self.returns[..., -1])),
            "exploit_return": pack(self._ci(self.exploit_returns())),
        }
        if self.has_adaptation_step and self.num_episodes > 1:
            out["pre_adaptation_return"] = out["first_episode_return"]
            out["post_adaptation_return"] = pack(
                self._ci(self.returns[..., 1:].mean(axis=-1))
            )
        if self.success_defined:
            k = min(self.exploration_episodes, self.num_episodes - 1)
            out["success_first_episode"] = pack(self._ci(self.success[..., 0]))
            out["success_last_episode"] = pack(self._ci(self.success[..., -1]))
            out["success_exploit"] = pack(self._ci(self.success[..., k:].mean(axis=-1)))
            out["success_any_episode"] = pack(self._ci(self.success.any(axis=-1)))
        return out


def _evaluate_tasks(benchmark: Benchmark, agent: Agent, num_episodes: int):
    env = benchmark.env

    def one(task, key):
        trial = run_trial(env, agent, task, key, num_episodes)
        return (
            trial.episode_return,
            trial.episode_success,
            trial.episode_length,
            trial.first_success_step,
        )

    return jax.jit(jax.vmap(one))


def meta_test(
    benchmark: Benchmark,
    agents: Agent | Sequence[Agent],
    *,
    seeds: Sequence[int] = (0,),
    num_episodes: int | None = None,
    exploration_episodes: int = 0,
    tasks: PyTree | None = None,
    task_batch_size: int | None = None,
) -> MetaTestResult:
    """Evaluate ``agents`` on the benchmark's held-out tasks.

    Args:
      benchmark: from ``adaptrl.make``.
      agents: one agent for all seeds, or one per seed (same length as ``seeds``).
      seeds: evaluation seeds; each seed runs every task once.
      num_episodes: episodes per trial (default: the benchmark's).
      exploration_episodes: for the episodic variant, episodes excluded from ``exploit_return``.
      tasks: batched tasks to evaluate on instead of ``benchmark.test_tasks``.
      task_batch_size: evaluate tasks in chunks of this size to bound memory.
    """
    seeds = list(seeds)
    if isinstance(agents, Agent):
        agents = [agents] * len(seeds)
    agents = list(agents)
    if len(agents) != len(seeds):
        raise ValueError(f"got {len(agents)} agents for {len(seeds)} seeds; pass one per seed")
    if not seeds:
        raise ValueError("meta_test needs at least one seed")
    num_episodes = benchmark.episodes_per_trial if num_episodes is None else num_episodes
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    if not 0 <= exploration_episodes < num_episodes:
        raise ValueError(
            f"exploration_episodes must be in [0, {num_episodes}), got {exploration_episodes}"
        )
    tasks = benchmark.test_tasks if tasks is None else tasks
    n_tasks = tree_size(tasks)
    batch = n_tasks if task_batch_size is None else max(1, task_batch_size)

    start = time.perf_counter()
    per_seed = []
    compiled: dict[int, Any] = {}
    for seed, agent in zip(seeds, agents, strict=True):
        fn = compiled.setdefault(id(agent), _evaluate_tasks(benchmark, agent, num_episodes))
        keys = jax.random.split(jax.random.PRNGKey(seed), n_tasks)
        chunks = []
        for lo in range(0, n_tasks, batch):
            idx = jnp.arange(lo, min(lo + batch, n_tasks))
            chunks.append(jax.device_get(fn(tree_index(tasks, idx), keys[idx])))
        per_seed.append([np.concatenate(parts) for parts in zip(*chunks, strict=True)])
    return result_from_seeds(
        benchmark, per_seed, replicas=agents, seeds=seeds, agent=agents[0].name,
        privileged=any(a.privileged for a in agents),
        has_adaptation_step=agents[0].end_episode is not None,
        exploration_episodes=exploration_episodes, start=start,
    )  # fmt: skip


def result_from_seeds(benchmark, per_seed, *, replicas, seeds, agent, privileged,
                      has_adaptation_step, exploration_episodes, start) -> MetaTestResult:
    """Assemble a ``MetaTestResult`` from per-seed (returns, success, lengths, first success)
    arrays of shape (tasks, episodes); ``replicas[i]`` is the object behind seed ``i`` (rows of
    the same object form one replication group)."""
    stacked = [np.stack(arrs) for arrs in zip(*per_seed, strict=True)]
    group_of: dict[int, int] = {}
    groups = [group_of.setdefault(id(r), len(group_of)) for r in replicas]
    return MetaTestResult(
        env=benchmark.name,
        agent=agent,
        privileged=privileged,
        has_adaptation_step=has_adaptation_step,
        success_defined=benchmark.success_defined,
        seeds=list(seeds),
        exploration_episodes=exploration_episodes,
        returns=stacked[0].astype(np.float64),
        success=stacked[1].astype(bool),
        lengths=stacked[2].astype(np.int64),
        first_success_step=stacked[3].astype(np.int64),
        groups=groups,
        wall_clock_s=time.perf_counter() - start,
    )
