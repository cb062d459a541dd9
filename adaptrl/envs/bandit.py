"""Bernoulli multi-armed bandits (RL², Duan et al. 2016, §3.1, Table 1).

Definition: ``k`` arms; arm ``i`` pays 1 with probability ``p_i`` and 0 otherwise; the ``p_i`` are
drawn i.i.d. from U[0, 1] once per task. A *trial* is ``n`` pulls of the same bandit. As in RL²,
each pull is one episode of length 1 (so the adaptation curve is the reward per pull) and the agent
observes nothing beyond its previous action, reward and done flag: the observation is a constant
zero vector of length 1.

A harder two-armed variant, ``sample_mirrored_task``, pays ``0.5 + d`` and ``0.5 - d`` with
``d ~ U[0.1, 0.3]`` and the better arm random. One reward says little about which arm is better,
so counting outcomes (memory) clearly beats the best memoryless rule, win-stay / lose-shift,
which spends a fraction ``0.5 - d`` of its pulls on the worse arm however long the trial.

Static config: ``num_arms``. Task pytree: ``BanditTask(probs: (k,) float32)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from adaptrl.envs.base import Box, Discrete, Environment, make_timestep


@struct.dataclass
class BanditTask:
    probs: jax.Array  # (k,) float32, success probability of each arm


@struct.dataclass
class BanditState:
    t: jax.Array  # () int32


def sample_bandit_task(key: jax.Array, num_arms: int) -> BanditTask:
    """p_i ~ U[0, 1] i.i.d. for each of ``num_arms`` arms."""
    return BanditTask(probs=jax.random.uniform(key, (num_arms,), jnp.float32))


def sample_mirrored_task(key: jax.Array, low: float = 0.1, high: float = 0.3) -> BanditTask:
    """Two arms paying ``0.5 + d`` and ``0.5 - d``, ``d ~ U[low, high]``, better arm random."""
    gap_key, side_key = jax.random.split(key)
    d = jax.random.uniform(gap_key, (), jnp.float32, low, high)
    probs = jnp.stack([0.5 + d, 0.5 - d])
    return BanditTask(probs=jnp.where(jax.random.bernoulli(side_key), probs, probs[::-1]))


@dataclasses.dataclass(frozen=True)
class BernoulliBandit(Environment):
    num_arms: int = 5
    max_episode_steps: int = 1

    def reset(self, key, task: BanditTask):
        del key, task
        return BanditState(t=jnp.int32(0)), make_timestep(jnp.zeros((1,), jnp.float32))

    def step(self, key, state: BanditState, action, task: BanditTask):
        self.check_action(action)
        reward = jax.random.bernoulli(key, task.probs[action]).astype(jnp.float32)
        t = state.t + 1
        # Success = the pulled arm is a best arm (useful for regret-style reporting).
        best = task.probs[action] >= jnp.max(task.probs)
        ts = make_timestep(
            jnp.zeros((1,), jnp.float32),
            reward,
            terminated=False,
            truncated=t >= self.max_episode_steps,
            success=best,
        )
        return BanditState(t=t), ts

    @property
    def observation_space(self):
        return Box(0.0, 0.0, (1,))

    @property
    def action_space(self):
        return Discrete(self.num_arms)
