"""The functional environment API every task family implements.

An environment object holds only *static* configuration (sizes, horizons, reward constants):
it is a frozen, hashable dataclass, so it can be closed over or passed as a static argument to
``jax.jit``. Everything that differs between tasks lives in the *task*, a pytree of arrays that
is passed explicitly to both pure functions::

    state, ts = env.reset(key, task)
    state, ts = env.step(key, state, action, task)

Both are jittable and vmappable over keys, tasks and states. An environment never samples a task
and never resets itself: the rollout layer resets it (with the *same* task) when an episode ends,
so a trial of several episodes always stays in one MDP.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

PyTree = Any


@struct.dataclass
class TimeStep:
    """What the agent sees after ``reset`` or ``step``.

    Attributes:
      observation: ``env.observation_space.shape`` array.
      reward: () float32, reward of the transition that led here (0 after reset).
      terminated: () bool, the MDP reached a terminal state (no bootstrapping past it).
      truncated: () bool, the episode hit its time limit (bootstrapping would be valid).
      success: () bool, family-defined success *on this step* (e.g. on the goal); False when a
        family defines no success.
    """

    observation: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    success: jax.Array

    @property
    def done(self) -> jax.Array:
        """() bool, the episode is over for either reason."""
        return jnp.logical_or(self.terminated, self.truncated)


def make_timestep(observation, reward=0.0, terminated=False, truncated=False, success=False):
    """Build a ``TimeStep`` with canonical dtypes (float32 reward, bool flags)."""
    terminated = jnp.asarray(terminated, jnp.bool_)
    # A step that terminates is not also a truncation: bootstrapping must stop there.
    truncated = jnp.logical_and(jnp.asarray(truncated, jnp.bool_), jnp.logical_not(terminated))
    return TimeStep(
        observation=observation,
        reward=jnp.asarray(reward, jnp.float32),
        terminated=terminated,
        truncated=truncated,
        success=jnp.asarray(success, jnp.bool_),
    )


@dataclasses.dataclass(frozen=True)
class Discrete:
    """``n`` actions ``0..n-1``; an action is a () int32 array."""

    n: int

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def dtype(self):
        return jnp.int32

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=jnp.int32)

    def contains(self, x) -> bool:
        x = jnp.asarray(x)
        return x.shape == () and bool((x >= 0) & (x < self.n))


@dataclasses.dataclass(frozen=True)
class Box:
    """Real vectors of ``shape`` with elementwise bounds ``low <= x <= high`` (float32)."""

    low: float
    high: float
    shape: tuple[int, ...]

    @property
    def dtype(self):
        return jnp.float32

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, self.shape, jnp.float32, self.low, self.high)

    def contains(self, x) -> bool:
        x = jnp.asarray(x)
        return x.shape == self.shape and bool(jnp.all((x >= self.low) & (x <= self.high)))


Space = Discrete | Box


class Environment:
    """Base for task families. Subclasses are frozen dataclasses and implement:

    - ``reset(key, task) -> (state, TimeStep)``
    - ``step(key, state, action, task) -> (state, TimeStep)``
    - ``observation_space`` / ``action_space`` properties
    - ``max_episode_steps``: int field or property, the episode's time limit.

    The state is a family-specific pytree; it always carries the step counter ``t``.
    """

    max_episode_steps: int

    def reset(self, key: jax.Array, task: PyTree) -> tuple[PyTree, TimeStep]:
        raise NotImplementedError

    def step(
        self, key: jax.Array, state: PyTree, action: jax.Array, task: PyTree
    ) -> tuple[PyTree, TimeStep]:
        raise NotImplementedError

    @property
    def observation_space(self) -> Space:
        raise NotImplementedError

    @property
    def action_space(self) -> Space:
        raise NotImplementedError

    def check_action(self, action: jax.Array) -> None:
        """Raise a clear ``ValueError`` if ``action`` has the wrong shape for one env.

        Called at trace time by the rollout layer, so mistakes show up before compilation.
        """
        space = self.action_space
        shape = tuple(jnp.shape(action))
        if shape != tuple(space.shape):
            raise ValueError(
                f"{type(self).__name__} expects one action of shape {tuple(space.shape)} "
                f"({type(space).__name__}), got shape {shape}. Batch over envs with jax.vmap "
                "rather than passing a batch of actions to a single env."
            )


def time_limit(t: jax.Array, max_steps: int) -> jax.Array:
    """() bool: the episode's ``t``-th step (1-based, after incrementing) hits the limit."""
    return t >= max_steps
