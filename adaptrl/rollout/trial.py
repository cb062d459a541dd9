"""Trials: ``k`` consecutive episodes in one task, with an agent whose memory may persist.

An *agent* is a bundle of pure functions (``Agent``). Its *carry* is whatever it remembers: a
recurrent hidden state, posterior counts, adapted parameters. The carry is created once per trial
by ``agent.init`` and threaded through every step of every episode, so memory persists across
episode boundaries and is fresh for the next trial. Each step the agent sees an ``AgentInput``
holding the observation plus the previous action, reward and done flag (what RL² feeds its RNN).
Agents with an explicit adaptation step (MAML-style) implement ``end_episode``, which receives the
finished episode and returns the adapted carry.

``run_trial`` is written for one task and one trial; vmap it over tasks and seeds at the call site.
Episodes are padded to ``env.max_episode_steps``: steps after an episode terminated early are
marked ``valid = False``, change nothing and earn nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from adaptrl.envs.base import Discrete, Environment

PyTree = Any


@struct.dataclass
class AgentInput:
    """What an agent sees at one step.

    Attributes:
      observation: current observation (a fresh reset observation right after an episode ended).
      prev_action: action of the previous step (zeros at the start of the trial).
      prev_reward: () float32, reward of the previous step (0 at the start of the trial).
      prev_done: () bool, the previous step ended an episode (so a new episode starts now).
      first: () bool, first step of the trial.
      episode: () int32, index of the current episode within the trial.
    """

    observation: jax.Array
    prev_action: jax.Array
    prev_reward: jax.Array
    prev_done: jax.Array
    first: jax.Array
    episode: jax.Array


@struct.dataclass
class Transition:
    """One step; in a ``Trial`` every leaf has leading axes ``(episodes, max_episode_steps)``.

    ``agent_input`` is exactly what the agent saw (so training can replay the sequence);
    ``extras`` is whatever ``agent.act`` returned besides the action (log-probs, values...).
    """

    agent_input: AgentInput
    action: jax.Array
    reward: jax.Array
    next_observation: jax.Array  # the true next observation (not the reset one)
    terminated: jax.Array
    truncated: jax.Array
    success: jax.Array
    valid: jax.Array  # False on padding steps after the episode already ended
    extras: PyTree


@struct.dataclass
class Trial:
    """A finished trial.

    Attributes:
      transitions: ``Transition`` with leading axes (episodes, max_episode_steps).
      episode_return: (episodes,) float32, undiscounted return of each episode.
      episode_length: (episodes,) int32, steps actually taken in each episode.
      episode_success: (episodes,) bool, success on any step of the episode.
      first_success_step: (episodes,) int32, 1-based step of the first success (0 = none).
    """

    transitions: Transition
    episode_return: jax.Array
    episode_length: jax.Array
    episode_success: jax.Array
    first_success_step: jax.Array


class Agent(NamedTuple):
    """Functions defining an agent, all pure and jittable.

    Attributes:
      init: ``(key, task) -> carry`` at the start of each trial. Only agents with
        ``privileged=True`` (oracles, the upper bounds of evaluation) may read ``task``.
      act: ``(key, carry, AgentInput) -> (carry, action, extras)``.
      end_episode: optional ``(key, carry, episode: Transition) -> carry``; ``episode`` has
        leading axis ``max_episode_steps``. Explicit adaptation (a gradient step) goes here.
      name: for reports.
      privileged: True when the agent is told the task.
    """

    init: Callable[[jax.Array, PyTree], PyTree]
    act: Callable[[jax.Array, PyTree, AgentInput], tuple[PyTree, jax.Array, PyTree]]
    end_episode: Callable[[jax.Array, PyTree, Transition], PyTree] | None = None
    name: str = "agent"
    privileged: bool = False


def zero_action(env: Environment) -> jax.Array:
    space = env.action_space
    if isinstance(space, Discrete):
        return jnp.zeros((), jnp.int32)
    return jnp.zeros(space.shape, jnp.float32)


def initial_agent_input(env: Environment, observation: jax.Array) -> AgentInput:
    """What an agent sees at the first step of a trial (no previous action or reward)."""
    return AgentInput(
        observation=observation,
        prev_action=zero_action(env),
        prev_reward=jnp.float32(0.0),
        prev_done=jnp.bool_(False),
        first=jnp.bool_(True),
        episode=jnp.int32(0),
    )


def tree_where(cond: jax.Array, a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``where(cond, a, b)`` for a scalar ``cond``."""
    return jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y), a, b)


def _cast_action(env: Environment, action: jax.Array) -> jax.Array:
    space = env.action_space
    return jnp.asarray(action, jnp.int32 if isinstance(space, Discrete) else jnp.float32)


def run_trial(
    env: Environment,
    agent: Agent,
    task: PyTree,
    key: jax.Array,
    num_episodes: int,
) -> Trial:
    """Run ``num_episodes`` episodes of ``env`` in ``task`` with one persistent agent carry.

    Shapes: for one task and one key (vmap for batches). ``num_episodes`` is static.
    The environment is reset with the same ``task`` at the start of every episode.
    """
    horizon = env.max_episode_steps
    k_init, k_run = jax.random.split(key)
    carry0 = agent.init(k_init, task)

    def episode_body(outer, episode_idx):
        carry, prev_action, prev_reward, not_first = outer
        k_ep = jax.random.fold_in(k_run, episode_idx)
        k_reset, k_steps, k_adapt = jax.random.split(k_ep, 3)
        env_state, ts = env.reset(k_reset, task)

        def step_body(inner, t):
            carry, env_state, obs, prev_action, prev_reward, prev_done, alive = inner
            k_act, k_env = jax.random.split(jax.random.fold_in(k_steps, t))
            agent_input = AgentInput(
                observation=obs,
                prev_action=prev_action,
                prev_reward=prev_reward,
                prev_done=prev_done,
                first=jnp.logical_and(t == 0, jnp.logical_not(not_first)),
                episode=episode_idx.astype(jnp.int32),
            )
            new_carry, action, extras = agent.act(k_act, carry, agent_input)
            action = _cast_action(env, action)
            new_env_state, new_ts = env.step(k_env, env_state, action, task)
            reward = jnp.where(alive, new_ts.reward, 0.0)
            transition = Transition(
                agent_input=agent_input,
                action=action,
                reward=reward,
                next_observation=new_ts.observation,
                terminated=new_ts.terminated & alive,
                truncated=new_ts.truncated & alive,
                success=new_ts.success & alive,
                valid=alive,
                extras=extras,
            )
            done = new_ts.done
            # Padding steps (after the episode ended) leave everything as it was.
            inner = (
                tree_where(alive, new_carry, carry),
                tree_where(alive, new_env_state, env_state),
                jnp.where(alive, new_ts.observation, obs),
                jnp.where(alive, action, prev_action),
                jnp.where(alive, reward, prev_reward),
                jnp.where(alive, done, prev_done),
                jnp.logical_and(alive, jnp.logical_not(done)),
            )
            return inner, transition

        inner0 = (
            carry,
            env_state,
            ts.observation,
            prev_action,
            prev_reward,
            not_first,  # prev_done: True when a previous episode of this trial just ended
            jnp.bool_(True),
        )
        (carry, _, _, last_action, last_reward, _, _), episode = jax.lax.scan(
            step_body, inner0, jnp.arange(horizon)
        )
        if agent.end_episode is not None:
            carry = agent.end_episode(k_adapt, carry, episode)
        return (carry, last_action, last_reward, jnp.bool_(True)), episode

    outer0 = (carry0, zero_action(env), jnp.float32(0.0), jnp.bool_(False))
    _, transitions = jax.lax.scan(episode_body, outer0, jnp.arange(num_episodes))
    first_success = jnp.where(
        transitions.success.any(axis=1),
        jnp.argmax(transitions.success, axis=1) + 1,
        0,
    ).astype(jnp.int32)
    return Trial(
        transitions=transitions,
        episode_return=transitions.reward.sum(axis=1),
        episode_length=transitions.valid.sum(axis=1).astype(jnp.int32),
        episode_success=transitions.success.any(axis=1),
        first_success_step=first_success,
    )


def step_auto_reset(env: Environment, key: jax.Array, state: PyTree, action, task: PyTree):
    """``env.step`` that resets (in the same ``task``) when the episode ends.

    Returns ``(state, timestep, final_observation)``: ``timestep.observation`` is the reset
    observation when the episode ended, and ``final_observation`` is the observation the step
    actually reached (identical when the episode goes on). Reward and flags describe the step.
    """
    k_step, k_reset = jax.random.split(key)
    next_state, ts = env.step(k_step, state, action, task)
    reset_state, reset_ts = env.reset(k_reset, task)
    done = ts.done
    state = tree_where(done, reset_state, next_state)
    obs = jnp.where(done, reset_ts.observation, ts.observation)
    return state, ts.replace(observation=obs), ts.observation
