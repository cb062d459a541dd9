"""Random tabular MDPs (RL², Duan et al. 2016, §3.2, Table 2).

Definition: ``|S|`` states, ``|A|`` actions. Per task, mean rewards ``mu(s, a) ~ N(1, 1)`` and
transition distributions ``p(. | s, a) ~ Dirichlet(1, ..., 1)`` (flat). Each step pays
``r ~ N(mu(s, a), 1)`` and moves to ``s' ~ p(. | s, a)``. Every episode starts in state 0 and
lasts ``T`` steps (a time limit, so ``truncated``, never ``terminated``); a trial is ``n`` episodes.
The observation is the one-hot state. Defaults are the paper's: ``|S| = 10, |A| = 5, T = 10``.

Static config: ``num_states``, ``num_actions``, ``max_episode_steps``.
Task pytree: ``TabularMDPTask(mean_rewards: (S, A), transitions: (S, A, S))``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from adaptrl.envs.base import Box, Discrete, Environment, make_timestep


@struct.dataclass
class TabularMDPTask:
    mean_rewards: jax.Array  # (S, A) float32
    transitions: jax.Array  # (S, A, S) float32, rows sum to 1


@struct.dataclass
class TabularMDPState:
    s: jax.Array  # () int32, current state
    t: jax.Array  # () int32, steps taken this episode


def sample_tabular_mdp_task(key, num_states: int, num_actions: int) -> TabularMDPTask:
    """mu(s, a) ~ N(1, 1); p(.|s, a) ~ Dirichlet(1_S)."""
    k_mu, k_p = jax.random.split(key)
    shape = (num_states, num_actions, num_states)
    # Drawn flat and reshaped: multi-dimensional draws compile several times slower on CPU.
    mu = 1.0 + jax.random.normal(k_mu, (num_states * num_actions,), jnp.float32)
    # Flat Dirichlet(1_S) = normalised i.i.d. Exp(1) draws. Same distribution as
    # jax.random.dirichlet, but without its gamma sampler, which takes seconds to compile on CPU
    # every time task sampling is traced.
    e = jax.random.exponential(k_p, (num_states * num_actions * num_states,), jnp.float32)
    e = e.reshape(shape)
    p = e / jnp.sum(e, axis=-1, keepdims=True)
    return TabularMDPTask(mean_rewards=mu.reshape(num_states, num_actions), transitions=p)


@dataclasses.dataclass(frozen=True)
class TabularMDP(Environment):
    num_states: int = 10
    num_actions: int = 5
    max_episode_steps: int = 10

    def _obs(self, s):
        return jax.nn.one_hot(s, self.num_states, dtype=jnp.float32)

    def reset(self, key, task: TabularMDPTask):
        del key, task
        state = TabularMDPState(s=jnp.int32(0), t=jnp.int32(0))
        return state, make_timestep(self._obs(state.s))

    def step(self, key, state: TabularMDPState, action, task: TabularMDPTask):
        self.check_action(action)
        k_r, k_s = jax.random.split(key)
        reward = task.mean_rewards[state.s, action] + jax.random.normal(k_r, (), jnp.float32)
        # Inverse-CDF sampling: one uniform per step (categorical() draws one Gumbel per state).
        cdf = jnp.cumsum(task.transitions[state.s, action])
        u = jax.random.uniform(k_s, (), jnp.float32) * cdf[-1]
        s_next = jnp.minimum(jnp.sum(cdf <= u), self.num_states - 1).astype(jnp.int32)
        t = state.t + 1
        ts = make_timestep(self._obs(s_next), reward, truncated=t >= self.max_episode_steps)
        return TabularMDPState(s=s_next, t=t), ts

    @property
    def observation_space(self):
        return Box(0.0, 1.0, (self.num_states,))

    @property
    def action_space(self):
        return Discrete(self.num_actions)
