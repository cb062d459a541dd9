"""Classic non-learning agents for Bernoulli bandits (the baselines of RL² Table 1).

Every agent is an ``adaptrl.rollout.trial.Agent`` whose carry is the sufficient statistic of a
Beta-Bernoulli model, ``BetaCounts(successes, failures)``, both ``(k,)`` float32. The counts are
updated in ``end_episode`` from the finished episode's valid transitions (``reward`` counts as a
success, ``1 - reward`` as a failure), so the agents also work if a bandit episode had more than
one pull. ``act`` only reads the counts and never the observation or the task.

All functions are pure and jittable; vmap ``run_trial`` over tasks and keys at the call site.
Ties between equally good arms are broken uniformly at random, so no arm index is favoured.

Factories take either the number of arms or a bandit environment (anything with
``action_space.n``). Numeric hyperparameters (``c``, ``epsilon``) may be Python floats or traced
JAX scalars, so a hyperparameter sweep can reuse one compiled function.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from adaptrl.baselines.gittins import gittins_table
from adaptrl.baselines.random import random_agent
from adaptrl.rollout.trial import Agent, AgentInput, Transition

__all__ = [
    "BetaCounts",
    "epsilon_greedy",
    "gittins",
    "gittins_from_table",
    "greedy",
    "random_agent",
    "random_argmax",
    "thompson_sampling",
    "ucb1",
]

SQRT2 = 1.4142135623730951  # UCB1's textbook exploration constant


@struct.dataclass
class BetaCounts:
    successes: jax.Array  # (k,) float32, total reward of each arm
    failures: jax.Array  # (k,) float32, total (1 - reward) of each arm

    @property
    def pulls(self) -> jax.Array:
        """(k,) number of pulls of each arm."""
        return self.successes + self.failures


def _num_arms(env_or_k: Any) -> int:
    if isinstance(env_or_k, int | np.integer):
        return int(env_or_k)
    return int(env_or_k.action_space.n)


def _init_counts(num_arms: int):
    def init(key: jax.Array, task) -> BetaCounts:
        del key, task
        zeros = jnp.zeros((num_arms,), jnp.float32)
        return BetaCounts(successes=zeros, failures=zeros)

    return init


def update_counts(key: jax.Array, counts: BetaCounts, episode: Transition) -> BetaCounts:
    """``end_episode``: add the episode's pulls (leading axis = steps) to the counts."""
    del key
    k = counts.successes.shape[0]
    pulled = jax.nn.one_hot(episode.action, k, dtype=jnp.float32)  # (T, k)
    pulled = pulled * episode.valid[:, None].astype(jnp.float32)  # padding steps count for nothing
    reward = episode.reward[:, None].astype(jnp.float32)  # (T, 1)
    return BetaCounts(
        successes=counts.successes + jnp.sum(pulled * reward, axis=0),
        failures=counts.failures + jnp.sum(pulled * (1.0 - reward), axis=0),
    )


def random_argmax(key: jax.Array, scores: jax.Array) -> jax.Array:
    """() int32: an index of ``max(scores)`` (k,), uniformly among exact ties (``inf`` too)."""
    is_max = scores >= jnp.max(scores)
    return jax.random.categorical(key, jnp.where(is_max, 0.0, -jnp.inf)).astype(jnp.int32)


def posterior_mean(counts: BetaCounts, prior: tuple[float, float] = (1.0, 1.0)) -> jax.Array:
    """(k,) mean of each arm's ``Beta(a0 + s, b0 + f)`` posterior."""
    a0, b0 = prior
    return (a0 + counts.successes) / (a0 + b0 + counts.pulls)


def _index_agent(num_arms: int, scores, name: str) -> Agent:
    """An agent that pulls ``random_argmax(scores(key, counts))`` each step."""

    def act(key: jax.Array, counts: BetaCounts, inp: AgentInput):
        del inp
        k_score, k_tie = jax.random.split(key)
        return counts, random_argmax(k_tie, scores(k_score, counts)), ()

    return Agent(init=_init_counts(num_arms), act=act, end_episode=update_counts, name=name)


def thompson_sampling(env_or_k: Any, prior: tuple[float, float] = (1.0, 1.0)) -> Agent:
    """Pulls the arm with the largest draw from its ``Beta(a0 + s, b0 + f)`` posterior."""
    a0, b0 = prior

    def scores(key, counts: BetaCounts):
        return jax.random.beta(key, a0 + counts.successes, b0 + counts.failures)

    return _index_agent(_num_arms(env_or_k), scores, "thompson_sampling")


def ucb1(
    env_or_k: Any,
    c: float | jax.Array = SQRT2,
    prior: tuple[float, float] | None = None,
) -> Agent:
    """UCB1 (Auer et al. 2002): pull ``argmax_i mean_i + c * sqrt(ln t / n_i)``.

    ``t`` is the number of pulls so far. With ``prior=None`` (textbook UCB1) ``mean_i`` is the
    empirical mean and every arm is pulled once before any index is compared. With a Beta prior
    ``(a0, b0)``, ``mean_i`` is the posterior mean and ``n_i`` includes the ``a0 + b0`` pseudo
    pulls, so unpulled arms get a finite index and short trials with many arms need not try every
    arm (``c -> 0`` recovers ``greedy``). ``c = sqrt(2)`` is the textbook constant; smaller values
    exploit more and usually do better on short horizons.
    """

    def scores(key, counts: BetaCounts):
        del key
        n = counts.pulls
        log_t = jnp.log(jnp.maximum(jnp.sum(n), 1.0))
        if prior is None:
            safe_n = jnp.maximum(n, 1.0)
            index = counts.successes / safe_n + c * jnp.sqrt(log_t / safe_n)
            return jnp.where(n > 0, index, jnp.inf)
        n_eff = n + prior[0] + prior[1]
        return posterior_mean(counts, prior) + c * jnp.sqrt(log_t / n_eff)

    name = "ucb1" if prior is None else "ucb1_beta_prior"
    return _index_agent(_num_arms(env_or_k), scores, name)


def greedy(env_or_k: Any, prior: tuple[float, float] = (1.0, 1.0)) -> Agent:
    """Pulls the arm with the largest posterior mean (``Beta(1, 1)`` prior: unpulled = 0.5)."""

    def scores(key, counts: BetaCounts):
        del key
        return posterior_mean(counts, prior)

    return _index_agent(_num_arms(env_or_k), scores, "greedy")


def epsilon_greedy(
    env_or_k: Any, epsilon: float | jax.Array = 0.1, prior: tuple[float, float] = (1.0, 1.0)
) -> Agent:
    """With probability ``epsilon`` a uniformly random arm, otherwise ``greedy``'s choice."""
    num_arms = _num_arms(env_or_k)

    def act(key: jax.Array, counts: BetaCounts, inp: AgentInput):
        del inp
        k_explore, k_arm, k_tie = jax.random.split(key, 3)
        exploit = random_argmax(k_tie, posterior_mean(counts, prior))
        explore = jax.random.randint(k_arm, (), 0, num_arms, dtype=jnp.int32)
        action = jnp.where(jax.random.uniform(k_explore) < epsilon, explore, exploit)
        return counts, action, ()

    return Agent(init=_init_counts(num_arms), act=act, end_episode=update_counts, name="eps_greedy")


def gittins_from_table(env_or_k: Any, table: jax.Array | np.ndarray) -> Agent:
    """Pulls the arm with the largest Gittins index ``table[s, f]`` ((H + 1, H + 1) array).

    Counts beyond the table are clipped to its edge (only reached if the trial is longer than the
    table's horizon). ``table`` may be a traced array, so one compiled sweep can try many
    discounts.
    """
    table = jnp.asarray(table, jnp.float32)
    horizon = table.shape[0] - 1

    def scores(key, counts: BetaCounts):
        del key
        s = jnp.clip(jnp.round(counts.successes).astype(jnp.int32), 0, horizon)
        f = jnp.clip(jnp.round(counts.failures).astype(jnp.int32), 0, horizon - s)
        return table[s, f]

    return _index_agent(_num_arms(env_or_k), scores, "gittins")


def gittins(env_or_k: Any, discount: float = 0.99, horizon: int = 500) -> Agent:
    """Gittins-index policy for ``Beta(1, 1)`` arms with discount ``discount``.

    ``horizon`` is the largest total count tabulated: use at least the number of pulls per trial.
    The table is computed once per ``(discount, horizon)`` and cached (see ``gittins.py``).
    """
    table = gittins_table(float(discount), int(horizon))
    return gittins_from_table(env_or_k, np.nan_to_num(table, nan=0.0))
