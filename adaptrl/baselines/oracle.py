"""Oracle (told the task: an upper bound) and task-agnostic (a lower bound) reference agents.

- ``oracle(benchmark)``: acts optimally, or near it, *given the task*: the best arm of a bandit,
  the finite-horizon optimal policy of a tabular MDP (backward induction on the true model), a
  straight line to the goal in the navigation families, the indicated goal in the sign grid. It is
  marked ``privileged`` in every report.
- ``task_agnostic(benchmark)``: the same controller aimed at one fixed "average" task (the mean of
  the meta-training tasks; integers rounded), so it never uses information about the current task.
  In the sign grid it heads for the first goal without reading the sign.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from adaptrl.baselines.psrl import backward_induction
from adaptrl.envs.bandit import BernoulliBandit
from adaptrl.envs.grid import GridNavigation, SignGrid
from adaptrl.envs.point_nav import PointNavigation
from adaptrl.envs.tabular_mdp import TabularMDP
from adaptrl.rollout.trial import Agent, AgentInput
from adaptrl.tasks.benchmark import Benchmark

PyTree = Any


def _toward_cell(position: jax.Array, target: jax.Array) -> jax.Array:
    """Grid action (0 noop, 1 up, 2 right, 3 down, 4 left) along x first, then y."""
    dx, dy = target[0] - position[0], target[1] - position[1]
    return jnp.select(
        [dx > 0, dx < 0, dy > 0, dy < 0], [2, 4, 1, 3], default=0
    ).astype(jnp.int32)


def _cell_from_one_hot(one_hot: jax.Array, width: int) -> jax.Array:
    idx = jnp.argmax(one_hot)
    return jnp.stack([idx % width, idx // width]).astype(jnp.int32)


def _controller(benchmark: Benchmark):
    """``(task, AgentInput, steps_in_episode) -> action`` for the benchmark's family."""
    env = benchmark.env
    if isinstance(env, BernoulliBandit):
        return lambda task, inp, t: jnp.argmax(task.probs).astype(jnp.int32)
    if isinstance(env, TabularMDP):

        def mdp(task, inp, t):
            q = backward_induction(task.mean_rewards, task.transitions, env.max_episode_steps)
            s = jnp.argmax(inp.observation)
            return jnp.argmax(q[jnp.minimum(t, env.max_episode_steps - 1), s]).astype(jnp.int32)

        return mdp
    if isinstance(env, PointNavigation):
        return lambda task, inp, t: jnp.clip(
            task.goal - inp.observation, -env.max_action, env.max_action
        )
    if isinstance(env, SignGrid):

        def sign(task, inp, t):
            pos = _cell_from_one_hot(inp.observation[: env.num_cells], env.width)
            return _toward_cell(pos, jnp.asarray(env.goals, jnp.int32)[task.goal_index])

        return sign
    if isinstance(env, GridNavigation):

        def grid(task, inp, t):
            return _toward_cell(_cell_from_one_hot(inp.observation, env.width), task.goal)

        return grid
    raise ValueError(f"no oracle controller for {type(env).__name__} ({benchmark.name})")


def _agent(benchmark: Benchmark, name: str, privileged: bool, fixed_task: PyTree | None) -> Agent:
    control = _controller(benchmark)

    def init(key, task):
        del key
        # carry: (the task the controller aims at, steps taken in the current episode)
        return (task if fixed_task is None else fixed_task, jnp.int32(0))

    def act(key, carry, inp: AgentInput):
        del key
        target, t = carry
        t = jnp.where(inp.prev_done | inp.first, 0, t)
        return (target, t + 1), control(target, inp, t), ()

    return Agent(init=init, act=act, name=name, privileged=privileged)


def oracle(benchmark: Benchmark) -> Agent:
    """Upper bound: the family's optimal controller, told the current task."""
    return _agent(benchmark, "oracle", True, None)


def mean_training_task(benchmark: Benchmark, num_samples: int = 1000) -> PyTree:
    """The average meta-training task (integer leaves rounded), from a fixed key."""
    split = benchmark.split
    if split.train_tasks is not None:
        tasks = split.train_tasks
    else:
        keys = jax.random.split(jax.random.PRNGKey(12345), num_samples)
        tasks = jax.vmap(benchmark.sample_train_task)(keys)

    def mean(x):
        m = jnp.mean(x.astype(jnp.float32), axis=0)
        return jnp.round(m).astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.integer) else m

    return jax.tree_util.tree_map(mean, tasks)


def task_agnostic(benchmark: Benchmark) -> Agent:
    """Lower bound: the oracle's controller aimed at the mean meta-training task, whatever the
    current task is."""
    return _agent(benchmark, "task-agnostic", False, mean_training_task(benchmark))
