"""Posterior-sampling RL on random tabular MDPs (adaptrl.baselines.psrl)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import adaptrl
from adaptrl.baselines.psrl import backward_induction, psrl
from adaptrl.baselines.random import random_agent
from adaptrl.envs.tabular_mdp import TabularMDP
from adaptrl.rollout.trial import AgentInput, Transition, run_trial


def _two_state_chain():
    """State 0: action 0 stays and pays 0.4, action 1 moves to state 1 and pays 0.
    State 1 is absorbing and pays 1 for either action."""
    rewards = jnp.array([[0.4, 0.0], [1.0, 1.0]])
    p = jnp.zeros((2, 2, 2)).at[0, 0, 0].set(1.0).at[0, 1, 1].set(1.0).at[1, :, 1].set(1.0)
    return rewards, p


@pytest.mark.parametrize("wrap", [pytest.param(lambda f: f, id="eager"),
                                  pytest.param(jax.jit, id="jit")])  # fmt: skip
def test_backward_induction_hand_checked(wrap):
    rewards, p = _two_state_chain()
    q = np.asarray(wrap(lambda r, p: backward_induction(r, p, 3))(rewards, p))
    assert q.shape == (3, 2, 2)
    # One step left: immediate rewards; V1 = [0.4, 1].
    np.testing.assert_allclose(q[2], rewards)
    # Two steps left: stay 0.4 + 0.4, move 0 + 1; V2 = [1, 2].
    np.testing.assert_allclose(q[1], [[0.8, 1.0], [2.0, 2.0]])
    # Three steps left: stay 0.4 + 1, move 0 + 2.
    np.testing.assert_allclose(q[0], [[1.4, 2.0], [3.0, 3.0]])


def _mdp_episode(states, actions, rewards, next_states, valid, num_states=3) -> Transition:
    t = len(states)
    one_hot = lambda s: jax.nn.one_hot(jnp.asarray(s), num_states)  # noqa: E731
    flags = jnp.zeros((t,), bool)
    inp = AgentInput(
        observation=one_hot(states),
        prev_action=jnp.zeros((t,), jnp.int32),
        prev_reward=jnp.zeros((t,)),
        prev_done=flags,
        first=flags,
        episode=jnp.zeros((t,), jnp.int32),
    )
    return Transition(
        agent_input=inp,
        action=jnp.asarray(actions, jnp.int32),
        reward=jnp.asarray(rewards, jnp.float32),
        next_observation=one_hot(next_states),
        terminated=flags,
        truncated=flags,
        success=flags,
        valid=jnp.asarray(valid),
        extras=(),
    )


def test_posterior_update_counts_valid_transitions_only():
    env = TabularMDP(num_states=3, num_actions=2, max_episode_steps=4)
    agent = psrl(env)
    carry = agent.init(jax.random.PRNGKey(0), None)
    assert carry.q.shape == (4, 3, 2)
    episode = _mdp_episode(
        states=[0, 1, 1, 2],
        actions=[1, 0, 0, 1],
        rewards=[2.0, -1.0, 3.0, 100.0],
        next_states=[1, 1, 2, 0],
        valid=[True, True, True, False],
    )
    carry = agent.end_episode(jax.random.PRNGKey(1), carry, episode)
    expected = np.zeros((3, 2, 3))
    expected[0, 1, 1] = 1
    expected[1, 0, 1] = 1
    expected[1, 0, 2] = 1
    np.testing.assert_array_equal(carry.transition_counts, expected)
    np.testing.assert_array_equal(carry.visit_counts, expected.sum(-1))
    np.testing.assert_allclose(carry.reward_sums, [[0, 2], [2, 0], [0, 0]])
    assert int(carry.t) == 0


def test_act_follows_time_dependent_plan():
    env = TabularMDP(num_states=2, num_actions=2, max_episode_steps=3)
    agent = psrl(env)
    carry = agent.init(jax.random.PRNGKey(0), None)
    carry = carry.replace(q=backward_induction(*_two_state_chain(), 3))  # install a known plan
    inp = AgentInput(
        observation=jax.nn.one_hot(0, 2),
        prev_action=jnp.int32(0),
        prev_reward=jnp.float32(0.0),
        prev_done=jnp.bool_(False),
        first=jnp.bool_(True),
        episode=jnp.int32(0),
    )
    actions = []
    for _ in range(3):
        carry, action, _ = agent.act(jax.random.PRNGKey(0), carry, inp)
        actions.append(int(action))
    # In state 0: moving pays off with 3 or 2 steps left, staying with only 1 left.
    assert actions == [1, 1, 0]


@pytest.fixture(scope="module")
def mdp_runs():
    bench = adaptrl.make("tabular-mdp-n10")
    tasks = jax.tree_util.tree_map(lambda x: x[:200], bench.test_tasks)
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    n = bench.episodes_per_trial
    out = {}
    for agent in (random_agent(bench.env), psrl(bench.env)):
        run = jax.jit(jax.vmap(lambda t, k, a=agent: run_trial(bench.env, a, t, k, n)))
        out[agent.name] = (run, np.asarray(run(tasks, keys).episode_return))
    return tasks, keys, out


def test_psrl_beats_random(mdp_runs):
    _, _, out = mdp_runs
    psrl_returns, random_returns = out["psrl"][1], out["random"][1]
    assert psrl_returns.shape == random_returns.shape == (200, 10)
    # Published (RL² Table 2, n = 10): random 100.1, PSRL 138.1; standard error here ~2.
    assert abs(random_returns.sum(-1).mean() - 100.0) < 6.0
    assert psrl_returns.sum(-1).mean() > random_returns.sum(-1).mean() + 20.0
    # It learns within the trial: late episodes beat the first ones.
    assert psrl_returns[:, -3:].mean() > psrl_returns[:, :3].mean() + 1.0


def test_psrl_is_deterministic_for_a_fixed_key(mdp_runs):
    tasks, keys, out = mdp_runs
    run, returns = out["psrl"]
    np.testing.assert_array_equal(np.asarray(run(tasks, keys).episode_return), returns)
    other = np.asarray(run(tasks, jax.random.split(jax.random.PRNGKey(7), 200)).episode_return)
    assert not np.array_equal(other, returns)
