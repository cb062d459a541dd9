"""Task distributions ``p(T)`` and the disjoint meta-train / meta-test split.

A task distribution is anything with ``sample(key) -> task`` where ``task`` is a pytree of arrays
(no Python scalars, no strings), so ``jax.vmap(dist.sample)(keys)`` draws a batch of tasks.

Two kinds exist:

- *continuous* distributions (bandit arm probabilities, goal positions): meta-train tasks are
  drawn fresh from ``p(T)``; the meta-test set is a fixed batch drawn from an independent key
  stream. Distinct draws from a continuous distribution coincide with probability zero, so the two
  sets are disjoint almost surely.
- *finite* task sets (the 21 VariBAD goals, the 31 Nav2D goals, the 100 half-circle goals):
  a seeded permutation splits the enumerated tasks into two disjoint index sets, and meta-training
  samples only from the training indices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


def tree_index(tree: PyTree, index) -> PyTree:
    """Select ``index`` along the leading axis of every leaf."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def tree_size(tree: PyTree) -> int:
    """Leading-axis length shared by all leaves of a batched pytree."""
    sizes = {int(np.shape(x)[0]) for x in jax.tree_util.tree_leaves(tree)}
    if len(sizes) != 1:
        raise ValueError(f"batched task leaves disagree on the leading axis: {sorted(sizes)}")
    return sizes.pop()


@dataclasses.dataclass(frozen=True)
class ContinuousTasks:
    """A distribution given by a pure sampling function ``sample_fn(key) -> task``."""

    sample_fn: Callable[[jax.Array], PyTree]
    description: str = ""

    def sample(self, key: jax.Array) -> PyTree:
        return self.sample_fn(key)

    @property
    def is_finite(self) -> bool:
        return False


@dataclasses.dataclass(frozen=True, eq=False)
class FiniteTasks:
    """A uniform distribution over an enumerated, batched task pytree (leading axis = tasks).

    Attributes:
      tasks: batched task pytree, leading axis = tasks.
      description: one line for listings.
      groups: optional ``(num_tasks,)`` integer labels. When given, the train/test split keeps
        each group whole, so a held-out task never shares its group with a training task (the
        sign grid groups by sign cell: otherwise the training twin of a held-out task would
        reveal its answer to an agent that memorises cells instead of reading the sign).
    """

    tasks: PyTree
    description: str = ""
    groups: np.ndarray | None = None

    def __post_init__(self):
        if self.groups is not None:
            groups = np.asarray(self.groups)
            if groups.shape != (self.num_tasks,) or not np.issubdtype(groups.dtype, np.integer):
                raise ValueError(
                    f"groups must be one integer label per task, shape ({self.num_tasks},); "
                    f"got dtype {groups.dtype}, shape {groups.shape}"
                )

    @property
    def is_finite(self) -> bool:
        return True

    @property
    def num_tasks(self) -> int:
        return tree_size(self.tasks)

    def get(self, index) -> PyTree:
        return tree_index(self.tasks, index)

    def sample(self, key: jax.Array) -> PyTree:
        return self.get(jax.random.randint(key, (), 0, self.num_tasks))


TaskDistribution = ContinuousTasks | FiniteTasks


@dataclasses.dataclass(frozen=True, eq=False)
class TaskSplit:
    """Disjoint meta-training and meta-test tasks drawn from one distribution.

    Attributes:
      distribution: the underlying ``p(T)``.
      test_tasks: batched pytree, leading axis = number of held-out tasks.
      train_tasks: batched pytree of the finite training set, or ``None`` for continuous
        distributions (training then samples ``p(T)`` directly).
    """

    distribution: TaskDistribution
    test_tasks: PyTree
    train_tasks: PyTree | None

    @property
    def num_test_tasks(self) -> int:
        return tree_size(self.test_tasks)

    @property
    def num_train_tasks(self) -> int | None:
        return None if self.train_tasks is None else tree_size(self.train_tasks)

    def sample_train(self, key: jax.Array) -> PyTree:
        """One meta-training task (jittable, vmappable over ``key``)."""
        if self.train_tasks is None:
            return self.distribution.sample(key)
        n = self.num_train_tasks
        return tree_index(self.train_tasks, jax.random.randint(key, (), 0, n))


def split_tasks(
    distribution: TaskDistribution,
    *,
    seed: int = 0,
    num_test_tasks: int = 1000,
    test_fraction: float = 0.25,
) -> TaskSplit:
    """Split ``distribution`` into disjoint meta-train / meta-test tasks, reproducibly.

    Args:
      distribution: continuous or finite.
      seed: split seed; the same seed always gives the same split.
      num_test_tasks: held-out batch size for continuous distributions.
      test_fraction: share of a finite set held out (at least one task on each side); with
        ``distribution.groups`` set, the share of groups held out, each group kept whole.
    """
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0x5EED)
    if distribution.is_finite:
        n = distribution.num_tasks
        groups = (
            np.arange(n) if distribution.groups is None else np.asarray(distribution.groups)
        )
        labels = np.unique(groups)
        if len(labels) < 2:
            raise ValueError(
                "a finite task set needs at least 2 tasks (2 groups, when grouped) to split "
                "train/test"
            )
        n_test = int(min(max(round(len(labels) * test_fraction), 1), len(labels) - 1))
        perm = np.asarray(jax.random.permutation(key, len(labels)))
        is_test = np.isin(groups, labels[perm[:n_test]])
        test_idx, train_idx = np.flatnonzero(is_test), np.flatnonzero(~is_test)
        return TaskSplit(
            distribution=distribution,
            test_tasks=distribution.get(jnp.asarray(test_idx)),
            train_tasks=distribution.get(jnp.asarray(train_idx)),
        )
    keys = jax.random.split(key, num_test_tasks)
    test = jax.jit(jax.vmap(distribution.sample))(keys)
    return TaskSplit(distribution=distribution, test_tasks=test, train_tasks=None)
