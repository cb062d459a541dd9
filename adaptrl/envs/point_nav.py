"""2D point-mass navigation to an unobserved goal: the MAML and PEARL set-ups.

Definition: the agent's position ``p`` lives in the plane; the action is a velocity, clipped to
``[-max_action, max_action]`` per coordinate, and ``p' = p + clip(a)``. The goal is part of the
task and is never observed; the observation is ``p'``. Reward is computed on the new position:

- ``dense``:  ``r = -||p' - g||`` (MAML 2D navigation, Finn et al. 2017, §5.3 / App. A.2: the
  published numbers match the unsquared distance);
- ``sparse``: ``r = 1 - ||p' - g||`` if ``||p' - g|| <= sparse_radius`` else 0 (PEARL's sparse
  point robot, Rakelly et al. 2019).

Variants (registered names):

- ``point-nav``: MAML. Start at the origin, goal ~ U[-0.5, 0.5]^2, horizon 100, dense reward,
  episode terminates when both coordinates are within 0.01 of the goal.
- ``point-nav-dense``: PEARL dense. Start ~ U[-1, 1]^2, goal ~ U[-1, 1]^2, horizon 20.
- ``point-nav-sparse``: PEARL sparse. Start at the origin, 100 goals evenly spaced on the upper
  unit half-circle (80 train / 20 test), horizon 20, sparse reward; ``training_reward`` is the
  dense one (PEARL meta-trains its critics on it; agents observe only the sparse reward).

``success`` is ``||p' - g|| <= success_radius`` on that step.

Static config: the dataclass fields. Task pytree: ``GoalTask(goal: (2,) float32)``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
from flax import struct

from adaptrl.envs.base import Box, Environment, make_timestep


@struct.dataclass
class GoalTask:
    goal: jax.Array  # (2,) float32


@struct.dataclass
class PointState:
    position: jax.Array  # (2,) float32
    t: jax.Array  # () int32


def sample_uniform_goal(key, low: float, high: float) -> GoalTask:
    return GoalTask(goal=jax.random.uniform(key, (2,), jnp.float32, low, high))


def half_circle_goals(num_goals: int = 100, radius: float = 1.0) -> GoalTask:
    """``num_goals`` goals evenly spaced on the upper half-circle (angles 0..pi), batched."""
    angles = jnp.linspace(0.0, jnp.pi, num_goals, dtype=jnp.float32)
    return GoalTask(goal=radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1))


@dataclasses.dataclass(frozen=True)
class PointNavigation(Environment):
    max_episode_steps: int = 100
    max_action: float = 0.1
    reward_type: Literal["dense", "sparse"] = "dense"
    sparse_radius: float = 0.2
    # Terminate when |p - g| < goal_tolerance per coordinate; None = never terminate.
    goal_tolerance: float | None = 0.01
    success_radius: float = 0.01
    start: Literal["origin", "uniform"] = "origin"
    start_range: float = 1.0  # start ~ U[-start_range, start_range]^2 when start == "uniform"
    # Reward that off-policy meta-learners may *train* on (``training_reward``); None = the
    # observed reward. PEARL meta-trains the sparse robot on the dense reward, while the agent
    # (its context, its returns) only ever sees the sparse one.
    training_reward_type: Literal["dense", "sparse"] | None = None

    def __post_init__(self):
        if self.reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {self.reward_type!r}")
        if self.training_reward_type not in (None, "dense", "sparse"):
            raise ValueError(f"training_reward_type must be None, 'dense' or 'sparse', got "
                             f"{self.training_reward_type!r}")
        if self.start not in ("origin", "uniform"):
            raise ValueError(f"start must be 'origin' or 'uniform', got {self.start!r}")

    def reset(self, key, task: GoalTask):
        del task
        if self.start == "uniform":
            pos = jax.random.uniform(key, (2,), jnp.float32, -self.start_range, self.start_range)
        else:
            pos = jnp.zeros((2,), jnp.float32)
        return PointState(position=pos, t=jnp.int32(0)), make_timestep(pos)

    def reward(self, position, task: GoalTask) -> jax.Array:
        """Reward for arriving at ``position`` (pure; shared by dense and sparse variants)."""
        dist = jnp.linalg.norm(position - task.goal)
        if self.reward_type == "dense":
            return -dist
        return jnp.where(dist <= self.sparse_radius, 1.0 - dist, 0.0)

    def training_reward(self, state: PointState, task: GoalTask) -> jax.Array:
        """Reward for having arrived in ``state`` under ``training_reward_type``."""
        kind = self.training_reward_type or self.reward_type
        return dataclasses.replace(self, reward_type=kind).reward(state.position, task)

    def step(self, key, state: PointState, action, task: GoalTask):
        del key
        self.check_action(action)
        velocity = jnp.clip(action.astype(jnp.float32), -self.max_action, self.max_action)
        pos = state.position + velocity
        t = state.t + 1
        dist = jnp.linalg.norm(pos - task.goal)
        if self.goal_tolerance is None:
            terminated = jnp.bool_(False)
        else:
            terminated = jnp.all(jnp.abs(pos - task.goal) < self.goal_tolerance)
        ts = make_timestep(
            pos,
            self.reward(pos, task),
            terminated=terminated,
            truncated=t >= self.max_episode_steps,
            success=dist <= self.success_radius,
        )
        return PointState(position=pos, t=t), ts

    @property
    def observation_space(self):
        return Box(-jnp.inf, jnp.inf, (2,))

    @property
    def action_space(self):
        return Box(-self.max_action, self.max_action, (2,))
