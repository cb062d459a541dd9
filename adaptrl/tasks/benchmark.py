"""A benchmark: an environment, its task distribution, the trial length and a disjoint split."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from adaptrl.envs.base import Environment
from adaptrl.tasks.distribution import TaskSplit

PyTree = Any


@dataclasses.dataclass(frozen=True, eq=False)
class Benchmark:
    """Everything needed to meta-train and meta-test on one task family variant.

    Attributes:
      name: registry name, e.g. ``"bandit-k5-n10"``.
      env: the (static) environment.
      split: disjoint meta-train / meta-test tasks.
      episodes_per_trial: episodes an agent gets in one task before the task changes.
      description: one line for ``adaptrl list``.
      success_defined: whether ``TimeStep.success`` is meaningful for reporting.
    """

    name: str
    env: Environment
    split: TaskSplit
    episodes_per_trial: int
    description: str = ""
    success_defined: bool = True

    @property
    def distribution(self):
        return self.split.distribution

    @property
    def test_tasks(self) -> PyTree:
        """Held-out tasks, batched on the leading axis."""
        return self.split.test_tasks

    @property
    def num_test_tasks(self) -> int:
        return self.split.num_test_tasks

    def sample_train_task(self, key: jax.Array) -> PyTree:
        """One meta-training task; jittable and vmappable over ``key``."""
        return self.split.sample_train(key)

    @property
    def steps_per_trial(self) -> int:
        return self.episodes_per_trial * self.env.max_episode_steps
