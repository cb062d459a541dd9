"""The uniformly random agent: a lower bound for every task family."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from adaptrl.envs.base import Environment
from adaptrl.rollout.trial import Agent, AgentInput


def random_agent(env: Environment, name: str = "random") -> Agent:
    """Samples each action uniformly from ``env.action_space`` (``Discrete`` or bounded ``Box``).

    The carry is an empty () array (the agent remembers nothing); it never reads the task.
    """
    space = env.action_space

    def init(key: jax.Array, task) -> jax.Array:
        del key, task
        return jnp.zeros((), jnp.int32)

    def act(key: jax.Array, carry: jax.Array, inp: AgentInput):
        del inp
        return carry, space.sample(key), ()

    return Agent(init=init, act=act, name=name)
