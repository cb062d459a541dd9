"""Any adaptrl family + task as a ``gymnasium.Env`` or ``gymnasium.vector.VectorEnv``.

For using adaptrl's tasks with other libraries::

    bench = adaptrl.make("cheetah-vel")
    env = GymnasiumEnv(bench.env, task=jax.tree.map(lambda x: x[0], bench.test_tasks))
    obs, info = env.reset(seed=0)

The task is fixed for the lifetime of the wrapper (``set_task`` changes it between episodes), as a
meta-RL trial requires; resets never sample a new task. ``reset``/``step`` are jitted once per
wrapper. Randomness (reset noise, stochastic transitions) comes from a JAX key derived from the
seed given to ``reset``, so ``reset(seed=s)`` is reproducible. Observations are float32 NumPy
arrays (int32 scalars never occur: all families observe vectors). Needs ``gymnasium``
(part of the ``mujoco`` extra).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
    from gymnasium.vector.utils import batch_space
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f'adaptrl.envs.gym_adapter needs gymnasium: pip install -e ".[mujoco]" ({e})'
    ) from e

from adaptrl.envs.base import Box, Discrete, Environment
from adaptrl.rollout.trial import step_auto_reset

PyTree = Any


def to_gym_space(space: Box | Discrete) -> spaces.Space:
    """The Gymnasium space of an adaptrl space (float32 boxes, int64 discrete)."""
    if isinstance(space, Discrete):
        return spaces.Discrete(space.n)
    low = np.full(space.shape, space.low, np.float32)
    high = np.full(space.shape, space.high, np.float32)
    return spaces.Box(low, high, space.shape, np.float32)


def _action_array(env: Environment, action, batch_shape=()) -> jax.Array:
    space = env.action_space
    if isinstance(space, Discrete):
        return jnp.asarray(np.asarray(action).reshape(batch_shape), jnp.int32)
    return jnp.asarray(np.asarray(action, np.float32).reshape(batch_shape + space.shape))


def _seed_key(np_random: np.random.Generator) -> jax.Array:
    return jax.random.key(int(np_random.integers(0, 2**31 - 1)))


class GymnasiumEnv(gymnasium.Env):
    """One adaptrl environment in one task, with the Gymnasium API.

    Args:
      env: an adaptrl ``Environment`` (static config).
      task: one task pytree (no batch axis).
    """

    metadata = {"render_modes": []}

    def __init__(self, env: Environment, task: PyTree):
        self.env = env
        self.task = task
        self.observation_space = to_gym_space(env.observation_space)
        self.action_space = to_gym_space(env.action_space)
        self._reset = jax.jit(env.reset)
        self._step = jax.jit(env.step)
        self._state = None
        self._key = None

    def set_task(self, task: PyTree) -> None:
        """Switch to another task; takes effect at the next ``reset``."""
        self.task = task

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._key, k_reset = jax.random.split(_seed_key(self.np_random))
        self._state, ts = self._reset(k_reset, self.task)
        return np.asarray(ts.observation), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, k_step = jax.random.split(self._key)
        self._state, ts = self._step(
            k_step, self._state, _action_array(self.env, action), self.task
        )
        info = {"success": bool(ts.success)}
        return (
            np.asarray(ts.observation),
            float(ts.reward),
            bool(ts.terminated),
            bool(ts.truncated),
            info,
        )


class GymnasiumVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of an adaptrl environment stepped as one jitted, vmapped call.

    Episodes auto-reset in the *same* step (``autoreset_mode = SAME_STEP``): after an episode
    ends, the returned observation is the next episode's first one and the observation the step
    actually reached is in ``info["final_obs"]`` (where ``info["_final_obs"]`` is True). Each
    env keeps its own task for the lifetime of the wrapper.

    Args:
      env: an adaptrl ``Environment``.
      tasks: a batched task pytree with leading axis ``num_envs``.
    """

    metadata = {
        "render_modes": [],
        "autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP,
    }

    def __init__(self, env: Environment, tasks: PyTree):
        sizes = {int(np.shape(x)[0]) for x in jax.tree.leaves(tasks)}
        if len(sizes) != 1:
            raise ValueError(f"task leaves disagree on the batch size: {sorted(sizes)}")
        self.env = env
        self.tasks = tasks
        self.num_envs = sizes.pop()
        self.single_observation_space = to_gym_space(env.observation_space)
        self.single_action_space = to_gym_space(env.action_space)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._reset = jax.jit(jax.vmap(env.reset))
        self._step = jax.jit(jax.vmap(lambda k, s, a, t: step_auto_reset(env, k, s, a, t)))
        self._state = None
        self._key = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)  # seeds self.np_random
        if seed is not None or self._key is None:
            self._key = _seed_key(self.np_random)
        self._key, k = jax.random.split(self._key)
        self._state, ts = self._reset(jax.random.split(k, self.num_envs), self.tasks)
        return np.asarray(ts.observation), {}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, k = jax.random.split(self._key)
        keys = jax.random.split(k, self.num_envs)
        actions = _action_array(self.env, actions, (self.num_envs,))
        self._state, ts, final_obs = self._step(keys, self._state, actions, self.tasks)
        done = np.asarray(ts.done)
        infos = {"success": np.asarray(ts.success)}
        if done.any():
            infos["final_obs"] = np.asarray(final_obs)
            infos["_final_obs"] = done
        return (
            np.asarray(ts.observation),
            np.asarray(ts.reward),
            np.asarray(ts.terminated),
            np.asarray(ts.truncated),
            infos,
        )
