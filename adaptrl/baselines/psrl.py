"""Posterior-sampling RL for tabular MDPs (PSRL, Osband, Russo & Van Roy 2013; RL² Table 2).

Model: transitions ``p(. | s, a) ~ Dirichlet(alpha)``; mean rewards ``mu(s, a) ~ N(m0, v0)``
with rewards ``r ~ N(mu(s, a), noise_var)`` and ``noise_var`` known. Both posteriors are
conjugate, so the carry holds only counts and sums.

Each episode: sample one MDP from the posterior, solve its ``T``-step finite-horizon problem by
backward induction, and act greedily with the time-dependent Q-values for the whole episode.
``end_episode`` adds the episode's valid transitions to the posterior and samples/solves the MDP
for the next episode; ``init`` does so from the prior for the first one. ``act`` needs no
randomness (continuous Q-values have no ties almost surely).

The observation must be the one-hot state (``TabularMDP``). Pure JAX: jittable and vmappable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from adaptrl.envs.tabular_mdp import TabularMDP
from adaptrl.rollout.trial import Agent, AgentInput, Transition


@struct.dataclass
class PSRLCarry:
    """Posterior statistics and the plan for the current episode.

    Attributes:
      transition_counts: (S, A, S) float32, observed ``s, a -> s'`` counts.
      reward_sums: (S, A) float32, sum of observed rewards per ``(s, a)``.
      visit_counts: (S, A) float32, observed visits per ``(s, a)``.
      q: (T, S, A) float32, Q-values of the sampled MDP with ``T - t`` steps to go at step ``t``.
      t: () int32, step within the current episode.
    """

    transition_counts: jax.Array
    reward_sums: jax.Array
    visit_counts: jax.Array
    q: jax.Array
    t: jax.Array


def backward_induction(rewards: jax.Array, transitions: jax.Array, horizon: int) -> jax.Array:
    """Optimal finite-horizon Q-values.

    Args:
      rewards: (S, A) expected rewards.
      transitions: (S, A, S) next-state probabilities.
      horizon: number of steps ``T`` (static).

    Returns:
      (T, S, A): ``q[t]`` is the optimal Q with ``T - t`` steps left (``q[T-1] == rewards``).
    """

    def backup(v_next, _):
        q = rewards + transitions @ v_next  # (S, A)
        return jnp.max(q, axis=-1), q

    v_end = jnp.zeros(rewards.shape[0], rewards.dtype)
    _, qs = jax.lax.scan(backup, v_end, None, length=horizon)
    return qs[::-1]  # scan produced 1-step-to-go first


def psrl(
    env: TabularMDP,
    *,
    dirichlet_alpha: float = 1.0,
    reward_prior_mean: float = 1.0,
    reward_prior_var: float = 1.0,
    reward_noise_var: float = 1.0,
) -> Agent:
    """PSRL with the RL² task prior by default (``Dir(1)``, ``mu ~ N(1, 1)``, noise variance 1)."""
    n_s, n_a, horizon = env.num_states, env.num_actions, env.max_episode_steps

    def sample_mdp(key: jax.Array, carry: PSRLCarry) -> jax.Array:
        """Draw (mu, P) from the posterior; return its (T, S, A) Q-values."""
        k_p, k_r = jax.random.split(key)
        p = jax.random.dirichlet(k_p, dirichlet_alpha + carry.transition_counts)  # (S, A, S)
        precision = 1.0 / reward_prior_var + carry.visit_counts / reward_noise_var  # (S, A)
        mean = (
            reward_prior_mean / reward_prior_var + carry.reward_sums / reward_noise_var
        ) / precision
        mu = mean + jax.random.normal(k_r, mean.shape) / jnp.sqrt(precision)
        return backward_induction(mu, p, horizon)

    def init(key: jax.Array, task) -> PSRLCarry:
        del task
        carry = PSRLCarry(
            transition_counts=jnp.zeros((n_s, n_a, n_s), jnp.float32),
            reward_sums=jnp.zeros((n_s, n_a), jnp.float32),
            visit_counts=jnp.zeros((n_s, n_a), jnp.float32),
            q=jnp.zeros((horizon, n_s, n_a), jnp.float32),
            t=jnp.int32(0),
        )
        return carry.replace(q=sample_mdp(key, carry))

    def act(key: jax.Array, carry: PSRLCarry, inp: AgentInput):
        del key
        s = jnp.argmax(inp.observation)
        q_now = carry.q[jnp.minimum(carry.t, horizon - 1), s]
        return carry.replace(t=carry.t + 1), jnp.argmax(q_now).astype(jnp.int32), ()

    def end_episode(key: jax.Array, carry: PSRLCarry, episode: Transition) -> PSRLCarry:
        valid = episode.valid.astype(jnp.float32)[:, None]  # (T, 1)
        s = episode.agent_input.observation * valid  # (T, S) one-hot, zero on padding
        a = jax.nn.one_hot(episode.action, n_a, dtype=jnp.float32)  # (T, A)
        s_next = episode.next_observation  # (T, S) one-hot
        sa = s[:, :, None] * a[:, None, :]  # (T, S, A)
        carry = carry.replace(
            transition_counts=carry.transition_counts + jnp.einsum("tsa,tn->san", sa, s_next),
            reward_sums=carry.reward_sums + jnp.einsum("tsa,t->sa", sa, episode.reward),
            visit_counts=carry.visit_counts + sa.sum(axis=0),
            t=jnp.int32(0),
        )
        return carry.replace(q=sample_mdp(key, carry))

    return Agent(init=init, act=act, end_episode=end_episode, name="psrl")
