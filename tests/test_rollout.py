"""Trials: scripted agents with exact returns, carry persistence, flags and padding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import adaptrl
from adaptrl import Agent, AgentInput
from adaptrl.envs.bandit import BanditTask
from adaptrl.envs.grid import GridGoalTask, SignTask
from adaptrl.envs.point_nav import GoalTask
from adaptrl.rollout.trial import Transition, Trial, run_trial

NOOP, UP, RIGHT, DOWN, LEFT = range(5)

VARIBAD = adaptrl.make("grid-varibad").env  # 5x5, start (0, 0), 15 steps, no termination
NAV2D = adaptrl.make("grid-nav2d").env  # 11x11, start (5, 0), 40 steps, terminates on goal
SIGN = adaptrl.make("sign-grid").env
BANDIT = adaptrl.make("bandit-k5-n10", num_test_tasks=1).env

jit_trial = jax.jit(run_trial, static_argnums=(0, 1, 4))


def cell_xy(one_hot, width):
    idx = jnp.argmax(one_hot)
    return idx % width, idx // width


def toward(x, y, tx, ty):
    """Grid action moving horizontally first, then vertically, then staying."""
    horizontal = jnp.where(tx > x, RIGHT, LEFT)
    vertical = jnp.where(ty > y, UP, DOWN)
    return jnp.where(x != tx, horizontal, jnp.where(y != ty, vertical, NOOP)).astype(jnp.int32)


def go_to_agent(width, goal):
    """Stateless scripted agent walking to a fixed cell; counts its steps in the carry."""

    def act(key, carry, inp: AgentInput):
        x, y = cell_xy(inp.observation[: width * width], width)
        return carry + 1, toward(x, y, *goal), carry + 1  # extras: steps taken so far

    return Agent(init=lambda key, task: jnp.int32(0), act=act, name=f"go-to-{goal}")


GO_VARIBAD = go_to_agent(5, (2, 2))
GO_NAV2D = go_to_agent(11, (10, 0))


def test_varibad_scripted_returns_are_exact():
    task = GridGoalTask(goal=jnp.array([2, 2], jnp.int32))
    trial = jit_trial(VARIBAD, GO_VARIBAD, task, jax.random.PRNGKey(0), 4)
    assert isinstance(trial, Trial)
    # R, R, U, U reaches (2, 2) on step 4: three steps at -0.1, then +1 for the remaining 12.
    expected_rewards = np.array([-0.1] * 3 + [1.0] * 12, np.float32)
    np.testing.assert_allclose(
        trial.transitions.reward, np.tile(expected_rewards, (4, 1)), atol=1e-6
    )
    np.testing.assert_allclose(trial.episode_return, [11.7] * 4, atol=1e-5)
    np.testing.assert_array_equal(trial.episode_length, [15] * 4)
    np.testing.assert_array_equal(trial.episode_success, [True] * 4)
    np.testing.assert_array_equal(trial.first_success_step, [4] * 4)
    np.testing.assert_array_equal(
        trial.transitions.action[:, :5], [[RIGHT, RIGHT, UP, UP, NOOP]] * 4
    )
    assert bool(trial.transitions.valid.all())
    assert not bool(trial.transitions.terminated.any())
    # Without early termination every step is valid, so the flags hold on the whole grid.
    step0 = np.zeros((4, 15), bool)
    step0[:, 0] = True
    first = np.zeros((4, 15), bool)
    first[0, 0] = True
    np.testing.assert_array_equal(trial.transitions.agent_input.first, first)
    np.testing.assert_array_equal(trial.transitions.agent_input.prev_done, step0 & ~first)
    np.testing.assert_array_equal(trial.transitions.truncated[:, -1], True)
    assert not bool(trial.transitions.truncated[:, :-1].any())
    # A different goal changes the returns: the scripted walk now never reaches it.
    other = jit_trial(
        VARIBAD, GO_VARIBAD, GridGoalTask(jnp.array([4, 4], jnp.int32)), jax.random.PRNGKey(0), 4
    )
    np.testing.assert_allclose(other.episode_return, [-1.5] * 4, atol=1e-5)
    assert not bool(other.episode_success.any())


def test_carry_persists_across_episodes_and_resets_per_trial():
    task = GridGoalTask(goal=jnp.array([2, 2], jnp.int32))
    trial = jit_trial(VARIBAD, GO_VARIBAD, task, jax.random.PRNGKey(1), 3)
    counts = np.asarray(trial.transitions.extras)
    np.testing.assert_array_equal(counts, np.arange(1, 46).reshape(3, 15))
    # A second trial (another key, another call) starts again from a fresh carry.
    again = jit_trial(VARIBAD, GO_VARIBAD, task, jax.random.PRNGKey(2), 3)
    np.testing.assert_array_equal(np.asarray(again.transitions.extras), counts)
    # Under vmap over trials, every trial gets its own fresh carry.
    tasks = GridGoalTask(goal=jnp.array([[2, 2], [4, 4], [0, 3]], jnp.int32))
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    batched = jax.jit(jax.vmap(lambda t, k: run_trial(VARIBAD, GO_VARIBAD, t, k, 3)))(tasks, keys)
    assert batched.transitions.reward.shape == (3, 3, 15)
    np.testing.assert_array_equal(np.asarray(batched.transitions.extras), np.stack([counts] * 3))
    np.testing.assert_allclose(batched.episode_return[0], [11.7] * 3, atol=1e-5)


def test_agent_input_flags_and_padding_after_termination():
    task = GridGoalTask(goal=jnp.array([10, 0], jnp.int32))  # five steps right of the start
    trial = jit_trial(NAV2D, GO_NAV2D, task, jax.random.PRNGKey(0), 3)
    tr = trial.transitions
    inp = tr.agent_input
    horizon = NAV2D.max_episode_steps
    assert tr.reward.shape == (3, horizon)

    valid = np.zeros((3, horizon), bool)
    valid[:, :5] = True
    np.testing.assert_array_equal(tr.valid, valid)
    np.testing.assert_array_equal(trial.episode_length, [5, 5, 5])
    np.testing.assert_array_equal(trial.episode_return, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(trial.first_success_step, [5, 5, 5])
    expected_reward = np.zeros((3, horizon), np.float32)
    expected_reward[:, 4] = 1.0
    np.testing.assert_array_equal(tr.reward, expected_reward)  # padded steps earn nothing
    np.testing.assert_array_equal(tr.terminated, expected_reward > 0)
    np.testing.assert_array_equal(tr.success, expected_reward > 0)
    assert not bool(tr.truncated.any())

    # first only at the trial's first step; prev_done exactly at the start of episodes 2..k.
    first = np.zeros((3, horizon), bool)
    first[0, 0] = True
    np.testing.assert_array_equal(inp.first, first)
    prev_done = np.zeros((3, horizon), bool)
    prev_done[1:, 0] = True
    np.testing.assert_array_equal(inp.prev_done[:, :5], prev_done[:, :5])
    np.testing.assert_array_equal(inp.episode[:, 0], [0, 1, 2])
    np.testing.assert_array_equal(inp.episode, np.repeat(np.arange(3)[:, None], horizon, 1))

    # prev_action / prev_reward carry over the episode boundary; zeros at the trial start.
    np.testing.assert_array_equal(inp.prev_action[:, 0], [0, RIGHT, RIGHT])
    np.testing.assert_array_equal(inp.prev_reward[:, 0], [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(inp.prev_action[:, 1:5], RIGHT)
    np.testing.assert_array_equal(inp.prev_reward[:, 1:5], 0.0)

    # Each episode starts from the reset observation; the terminating step's next_observation
    # is the goal cell, not the reset one.
    start_cell = 0 * 11 + 5
    np.testing.assert_array_equal(np.argmax(inp.observation[:, 0], -1), [start_cell] * 3)
    np.testing.assert_array_equal(np.argmax(tr.next_observation[:, 4], -1), [10] * 3)

    # The carry only advances on valid steps: counts continue 6, 7, ... in episode 2.
    counts = np.asarray(tr.extras)
    np.testing.assert_array_equal(counts[:, :5], np.arange(1, 16).reshape(3, 5))


def test_end_episode_sees_each_finished_episode():
    def act(key, carry, inp):
        steps, ended = carry
        return (steps + 1, ended), jnp.int32(RIGHT), {"ended": ended, "steps": steps + 1}

    def end_episode(key, carry, episode: Transition):
        steps, ended = carry
        assert episode.reward.shape == (NAV2D.max_episode_steps,)
        # The adaptation step sees the finished episode: its valid length is 5.
        return steps, ended + episode.valid.sum().astype(jnp.int32)

    agent = Agent(
        init=lambda key, task: (jnp.int32(0), jnp.int32(0)), act=act, end_episode=end_episode
    )
    trial = jit_trial(
        NAV2D, agent, GridGoalTask(jnp.array([10, 0], jnp.int32)), jax.random.PRNGKey(0), 3
    )
    np.testing.assert_array_equal(trial.transitions.extras["ended"][:, 0], [0, 5, 10])
    np.testing.assert_array_equal(trial.transitions.extras["steps"][:, 0], [1, 6, 11])


def test_sign_grid_information_gathering_agent():
    """Episode 1 walks to the sign, reads it and goes to the right goal; episode 2 goes straight
    there, remembering the reading in its carry."""
    cells = SIGN.num_cells

    def act(key, known, inp):
        obs = inp.observation
        x, y = cell_xy(obs[:cells], 7)
        sx, sy = jnp.round(obs[cells + 2 : cells + 4] * 6).astype(jnp.int32)
        reading = obs[cells + 4 :]
        known = jnp.where(reading.sum() > 0, jnp.argmax(reading).astype(jnp.int32), known)
        gx = jnp.where(known == 0, 0, 6)
        tx, ty = jnp.where(known >= 0, gx, sx), jnp.where(known >= 0, 6, sy)
        return known, toward(x, y, tx, ty), known

    agent = Agent(init=lambda key, task: jnp.int32(-1), act=act, name="read-the-sign")
    for sign_x, sign_y, goal_index in [(3, 0, 0), (6, 0, 0), (0, 1, 1), (2, 1, 1), (3, 1, 0)]:
        task = SignTask(
            sign=jnp.array([sign_x, sign_y], jnp.int32), goal_index=jnp.int32(goal_index)
        )
        trial = jit_trial(SIGN, agent, task, jax.random.PRNGKey(0), 2)
        goal_x = 0 if goal_index == 0 else 6
        first_len = abs(3 - sign_x) + (3 - sign_y) + abs(sign_x - goal_x) + (6 - sign_y)
        np.testing.assert_array_equal(trial.episode_length, [first_len, 6])
        np.testing.assert_array_equal(trial.episode_return, [1.0, 1.0])
        np.testing.assert_array_equal(trial.episode_success, [True, True])
        assert 10 <= first_len <= 18
        assert int(trial.transitions.extras[1, 0]) == goal_index  # remembered across episodes


def test_bandit_trial_keeps_the_task_across_pulls():
    # Cycling through the arms with a step counter in the carry: only arm 0 pays, every time.
    def act(key, count, inp):
        return count + 1, (count % 5).astype(jnp.int32), ()

    agent = Agent(init=lambda key, task: jnp.int32(0), act=act)
    task = BanditTask(probs=jnp.array([1.0, 0.0, 0.0, 0.0, 0.0], jnp.float32))
    trial = jit_trial(BANDIT, agent, task, jax.random.PRNGKey(0), 20)
    assert trial.transitions.reward.shape == (20, 1)
    np.testing.assert_array_equal(trial.episode_return, [1.0, 0.0, 0.0, 0.0, 0.0] * 4)
    np.testing.assert_array_equal(trial.transitions.action[:, 0], np.arange(20) % 5)
    np.testing.assert_array_equal(trial.transitions.agent_input.prev_done[:, 0], np.arange(20) > 0)
    np.testing.assert_array_equal(
        trial.transitions.agent_input.prev_reward[1:, 0], trial.episode_return[:-1]
    )


@pytest.mark.parametrize(
    ("env", "task", "bad_action", "expected"),
    [
        (
            VARIBAD,
            GridGoalTask(jnp.array([2, 2], jnp.int32)),
            jnp.zeros((2,), jnp.int32),
            r"shape \(\)",
        ),
        (BANDIT, BanditTask(jnp.full((5,), 0.5)), jnp.zeros((1,), jnp.int32), r"shape \(\)"),
        (
            adaptrl.make("point-nav", num_test_tasks=1).env,
            GoalTask(jnp.zeros((2,))),
            jnp.zeros((), jnp.float32),
            r"shape \(2,\)",
        ),
    ],
)
def test_wrong_action_shape_raises_clear_error(env, task, bad_action, expected):
    agent = Agent(init=lambda key, task: (), act=lambda key, carry, inp: ((), bad_action, ()))
    with pytest.raises(ValueError, match=f"expects one action of {expected}.*got shape"):
        run_trial(env, agent, task, jax.random.PRNGKey(0), 2)


POINT_DENSE = adaptrl.make("point-nav-dense", num_test_tasks=1).env
RANDOM_POINT_AGENT = Agent(
    init=lambda key, task: (),
    act=lambda key, carry, inp: ((), jax.random.uniform(key, (2,), minval=-0.1, maxval=0.1), ()),
    name="random",
)


def test_random_agent_trial_is_deterministic_and_consistent():
    goal = GoalTask(jnp.array([0.5, -0.5]))
    trial = jit_trial(POINT_DENSE, RANDOM_POINT_AGENT, goal, jax.random.PRNGKey(4), 3)
    tr = trial.transitions
    assert tr.action.shape == (3, 20, 2) and tr.action.dtype == jnp.float32
    # Fresh uniform starts each episode, same goal: reward = -||p' - g|| throughout.
    starts = np.asarray(tr.agent_input.observation[:, 0])
    assert len({tuple(s) for s in starts.tolist()}) == 3
    dist = np.linalg.norm(np.asarray(tr.next_observation) - np.array([0.5, -0.5]), axis=-1)
    np.testing.assert_allclose(tr.reward, -dist, rtol=1e-5)
    np.testing.assert_allclose(trial.episode_return, np.asarray(tr.reward).sum(1), rtol=1e-5)
    # Within an episode the next step starts where the last one ended.
    np.testing.assert_array_equal(tr.agent_input.observation[:, 1:], tr.next_observation[:, :-1])
    # Same key: same trial; another key: another trial.
    again = jit_trial(POINT_DENSE, RANDOM_POINT_AGENT, goal, jax.random.PRNGKey(4), 3)
    np.testing.assert_array_equal(again.transitions.action, tr.action)
    np.testing.assert_array_equal(again.transitions.next_observation, tr.next_observation)
    other = jit_trial(POINT_DENSE, RANDOM_POINT_AGENT, goal, jax.random.PRNGKey(5), 3)
    assert not np.array_equal(other.transitions.action, tr.action)
