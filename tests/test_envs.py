"""Environment contract and reward definitions for every registered task family.

Generic tests are parametrised over all ``adaptrl.list_envs()`` names. Jitted helpers take the
(hashable, frozen) environment as a static argument, so names sharing an environment (e.g. the
``bandit-k5-n*`` variants) share one compilation.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import adaptrl
from adaptrl.envs.bandit import BanditState, BanditTask
from adaptrl.envs.base import Box, Discrete, TimeStep
from adaptrl.envs.grid import (
    GridGoalTask,
    GridNavigation,
    GridState,
    SignGrid,
    SignTask,
    nav2d_goals,
    sign_grid_tasks,
    varibad_goals,
)
from adaptrl.envs.mujoco_tasks import FAMILIES as MUJOCO_FAMILIES
from adaptrl.envs.point_nav import GoalTask, PointNavigation, PointState
from adaptrl.envs.tabular_mdp import TabularMDP, TabularMDPState, TabularMDPTask
from adaptrl.rollout.trial import step_auto_reset

# MuJoCo families have their own contract tests (tests/test_mujoco_*.py: jit == eager, vmap,
# auto-reset, Gymnasium parity); their multi-dimensional actions and 200-step episodes do not
# fit the random-action helpers below.
NAMES = sorted(n for n in adaptrl.list_envs() if n not in MUJOCO_FAMILIES)
BATCH = 64
MAX_STEPS = 205  # longest rollout: 2 * 100 + 5 steps of point-nav
EAGER_STEPS = 8  # steps replayed eagerly against the batched rollout


@functools.cache
def bench(name: str):
    # A small held-out set keeps ``make`` cheap; it changes neither the env nor the training
    # sampler (default split sizes are tested in test_tasks.py).
    return adaptrl.make(name, num_test_tasks=1)


def key(seed: int) -> jax.Array:
    return jax.random.PRNGKey(seed)


def assert_tree_equal(a, b) -> None:
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def broadcast_task(task, n: int):
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), task)


def row(tree, i):
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def num_rollout_steps(env) -> int:
    """Enough steps for at least two full episodes plus a partial third."""
    return 2 * env.max_episode_steps + 5


@struct.dataclass
class RolloutInputs:
    """Randomness of a random-policy rollout; leading axes (BATCH,) or (BATCH, MAX_STEPS)."""

    reset_key: jax.Array
    uniforms: jax.Array  # U[0, 1)^2 per step, mapped to a uniformly random action
    step_keys: jax.Array


@functools.partial(jax.jit, static_argnums=1)
def rollout_inputs(key, batch: int) -> RolloutInputs:
    """Env-independent random inputs (one compilation for all envs); drawn flat, reshaped."""
    k_reset, k_u, k_step = jax.random.split(key, 3)
    uniforms = jax.random.uniform(k_u, (batch * MAX_STEPS * 2,), jnp.float32)
    step_keys = jax.random.split(k_step, batch * MAX_STEPS)
    return RolloutInputs(
        reset_key=jax.random.split(k_reset, batch),
        uniforms=uniforms.reshape(batch, MAX_STEPS, 2),
        step_keys=step_keys.reshape((batch, MAX_STEPS) + step_keys.shape[1:]),
    )


def policy_action(env, u):
    """A uniformly random action from two U[0, 1) numbers."""
    space = env.action_space
    if isinstance(space, Discrete):
        return jnp.minimum(jnp.floor(u[0] * space.n).astype(jnp.int32), space.n - 1)
    assert space.shape == (2,) and space.low == -space.high
    # (u - 0.5) is exact and a lone product cannot be fused into an FMA, so the action is
    # bit-identical with and without jit.
    return (u - 0.5) * (2.0 * space.high)


@struct.dataclass
class StepRecord:
    action: jax.Array
    timestep: TimeStep
    final_observation: jax.Array
    t: jax.Array  # state.t after the (auto-reset) step


def _rollout(env, num_steps, inputs: RolloutInputs, task):
    """Uniformly random actions for ``num_steps`` steps with ``step_auto_reset``."""
    state, ts0 = env.reset(inputs.reset_key, task)

    def body(state, x):
        k, u = x
        action = policy_action(env, u)
        state, ts, final_obs = step_auto_reset(env, k, state, action, task)
        return state, StepRecord(action, ts, final_obs, state.t)

    xs = (inputs.step_keys[:num_steps], inputs.uniforms[:num_steps])
    return ts0, jax.lax.scan(body, state, xs)[1]


@functools.partial(jax.jit, static_argnums=(0, 1))
def batched_rollout(env, num_steps, inputs, tasks):
    """``_rollout`` vmapped over (inputs, tasks), jitted once per distinct env."""
    return jax.vmap(functools.partial(_rollout, env, num_steps))(inputs, tasks)


def eager_rollout(env, inputs: RolloutInputs, task, stop):
    """The first ``stop`` steps of one ``_rollout`` without jit, vmap or scan."""
    state, ts0 = env.reset(inputs.reset_key, task)
    records = []
    for i in range(stop):
        action = policy_action(env, inputs.uniforms[i])
        state, ts, final_obs = step_auto_reset(env, inputs.step_keys[i], state, action, task)
        records.append(StepRecord(action, ts, final_obs, state.t))
    return ts0, jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *records)


def _without_reward(rec: StepRecord) -> StepRecord:
    return rec.replace(timestep=rec.timestep.replace(reward=jnp.zeros(())))


def assert_matches_eager(env, ts0, rec, inputs, i, task) -> None:
    """Row ``i`` of a batched (vmapped, jitted) rollout equals the eager unbatched one.

    Exact equality, except rewards within 1e-6: vectorised float maths (the norm in point
    navigation, the Gaussian noise of tabular MDPs) may round the last bit differently.
    """
    stop = min(EAGER_STEPS, rec.t.shape[1])
    ts0_e, rec_e = eager_rollout(env, row(inputs, i), task, stop)
    rec_i = jax.tree_util.tree_map(lambda x: x[i, :stop], rec)
    np.testing.assert_allclose(rec_i.timestep.reward, rec_e.timestep.reward, rtol=1e-6, atol=1e-6)
    assert_tree_equal((row(ts0, i), _without_reward(rec_i)), (ts0_e, _without_reward(rec_e)))


jit_reset = jax.jit(lambda env, k, task: env.reset(k, task), static_argnums=0)
jit_step = jax.jit(lambda env, k, s, a, task: env.step(k, s, a, task), static_argnums=0)


@functools.cache
def task_batch_rollout(name: str):
    """(tasks, ts0, records) for 64 training tasks, computed once per name."""
    b = bench(name)
    tasks = jax.vmap(b.sample_train_task)(jax.random.split(key(1), BATCH))
    ts0, rec = batched_rollout(
        b.env, num_rollout_steps(b.env), rollout_inputs(key(2), BATCH), tasks
    )
    return tasks, ts0, rec


# ---------------------------------------------------------------------------------------------
# Generic contract, every registered name
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_timestep_shapes_dtypes_and_spaces(name):
    env = bench(name).env
    obs_space, act_space = env.observation_space, env.action_space
    assert isinstance(obs_space, Box)
    assert isinstance(act_space, Discrete | Box)
    _, ts0, rec = task_batch_rollout(name)
    steps = num_rollout_steps(env)

    assert ts0.observation.shape == (BATCH,) + obs_space.shape
    assert ts0.observation.dtype == jnp.float32
    for flag in (ts0.terminated, ts0.truncated, ts0.success):
        assert flag.shape == (BATCH,) and flag.dtype == jnp.bool_
        assert not flag.any()
    assert ts0.reward.shape == (BATCH,) and ts0.reward.dtype == jnp.float32
    assert not ts0.reward.any()

    ts = rec.timestep
    assert ts.observation.shape == (BATCH, steps) + obs_space.shape
    assert rec.final_observation.shape == (BATCH, steps) + obs_space.shape
    assert ts.observation.dtype == jnp.float32
    assert ts.reward.shape == (BATCH, steps) and ts.reward.dtype == jnp.float32
    for flag in (ts.terminated, ts.truncated, ts.success, ts.done):
        assert flag.shape == (BATCH, steps) and flag.dtype == jnp.bool_
    assert rec.action.shape == (BATCH, steps) + act_space.shape
    assert rec.action.dtype == act_space.dtype
    for obs in (ts0.observation, ts.observation, rec.final_observation):
        obs = np.asarray(obs)
        assert np.all(obs >= obs_space.low) and np.all(obs <= obs_space.high)
    assert np.all(np.isfinite(np.asarray(ts.reward)))


@pytest.mark.parametrize("name", NAMES)
def test_flags_and_time_limit(name):
    env = bench(name).env
    horizon = env.max_episode_steps
    _, _, rec = task_batch_rollout(name)
    term = np.asarray(rec.timestep.terminated)
    trunc = np.asarray(rec.timestep.truncated)
    t_after = np.asarray(rec.t)
    assert not np.any(term & trunc)

    # Replay the episode step counter from the flags.
    counter = np.zeros(BATCH, np.int64)
    for i in range(term.shape[1]):
        counter += 1
        assert np.all(counter <= horizon)
        np.testing.assert_array_equal(trunc[:, i], (counter == horizon) & ~term[:, i])
        done = term[:, i] | trunc[:, i]
        assert np.all(done[counter == horizon])
        # After an auto-reset the state's step counter starts again from 0.
        np.testing.assert_array_equal(t_after[:, i], np.where(done, 0, counter))
        counter[done] = 0
    # Every rollout covers at least two full episodes, so truncations (or terminations) happen.
    assert np.all((term | trunc).sum(axis=1) >= 2)


@pytest.mark.parametrize("name", NAMES)
def test_auto_reset_observation(name):
    env = bench(name).env
    _, ts0, rec = task_batch_rollout(name)
    done = np.asarray(rec.timestep.done)
    obs = np.asarray(rec.timestep.observation)
    final = np.asarray(rec.final_observation)
    # Unfinished steps: the observation is the reached one.
    np.testing.assert_array_equal(obs[~done], final[~done])
    if not (isinstance(env, PointNavigation) and env.start == "uniform"):
        # Deterministic start: every reset observation equals the first one.
        start = np.broadcast_to(np.asarray(ts0.observation)[:, None], obs.shape)
        np.testing.assert_array_equal(obs[done], start[done])


@pytest.mark.parametrize("name", NAMES)
def test_reset_and_step_jit_equal_eager(name):
    b = bench(name)
    env = b.env
    task = b.sample_train_task(key(3))
    keys = jax.random.split(key(4), 4)
    uniforms = jax.random.uniform(key(5), (4, 2))
    state, ts = env.reset(keys[0], task)
    state_j, ts_j = jit_reset(env, keys[0], task)
    assert_tree_equal((state, ts), (state_j, ts_j))
    for i in range(1, 4):
        action = policy_action(env, uniforms[i])
        state, ts = env.step(keys[i], state, action, task)
        state_j, ts_j = jit_step(env, keys[i], state_j, action, task)
        if isinstance(env, TabularMDP):
            # mu + N(0, 1) noise: under jit XLA fuses the inverse-erf sampler, which may round
            # the last bits differently from the op-by-op eager computation.
            np.testing.assert_allclose(ts.reward, ts_j.reward, rtol=1e-6, atol=1e-6)
            ts_j = ts_j.replace(reward=ts.reward)
        assert_tree_equal((state, ts), (state_j, ts_j))
    assert int(state.t) == 3


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_tasks_matches_eager_single_task(name):
    b = bench(name)
    env = b.env
    tasks, ts0, rec = task_batch_rollout(name)
    # The 64 training tasks are not all the same task.
    leaves = np.concatenate([np.asarray(x).reshape(BATCH, -1) for x in jax.tree.leaves(tasks)], 1)
    assert len({r.tobytes() for r in leaves}) > 1
    inputs = rollout_inputs(key(2), BATCH)
    assert_matches_eager(env, ts0, rec, inputs, BATCH - 1, row(tasks, BATCH - 1))
    # Determinism per key: recomputing gives identical results.
    again = batched_rollout(env, num_rollout_steps(env), inputs, tasks)
    assert_tree_equal(again, (ts0, rec))


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_keys(name):
    b = bench(name)
    env = b.env
    task = b.sample_train_task(key(6))
    inputs = rollout_inputs(key(7), BATCH)
    ts0, rec = batched_rollout(env, num_rollout_steps(env), inputs, broadcast_task(task, BATCH))
    assert_matches_eager(env, ts0, rec, inputs, 5, task)
    # Different keys give different (random-action) trajectories.
    actions = np.asarray(rec.action).reshape(BATCH, -1)
    assert len({a.tobytes() for a in actions}) > BATCH // 2


def test_registered_envs_are_hashable_static_config():
    for name in NAMES:
        env = bench(name).env
        rebuilt = type(env)(**{f.name: getattr(env, f.name) for f in dataclasses.fields(env)})
        assert hash(env) == hash(rebuilt) and env == rebuilt
        with pytest.raises(dataclasses.FrozenInstanceError):
            env.max_episode_steps = 3


# ---------------------------------------------------------------------------------------------
# Bernoulli bandits
# ---------------------------------------------------------------------------------------------

BANDIT = bench("bandit-k5-n10").env


@functools.partial(jax.jit, static_argnums=0)
def _pull_many(env, keys, action, task):
    state, _ = env.reset(keys[0], task)
    return jax.vmap(lambda k: env.step(k, state, action, task)[1])(keys)


def test_bandit_reward_statistics_match_probs():
    probs = jnp.array([0.1, 0.3, 0.5, 0.7, 0.9], jnp.float32)
    task = BanditTask(probs=probs)
    keys = jax.random.split(key(10), 20_000)
    for arm in range(5):
        ts = _pull_many(BANDIT, keys, jnp.int32(arm), task)
        assert set(np.unique(np.asarray(ts.reward)).tolist()) <= {0.0, 1.0}
        assert abs(float(ts.reward.mean()) - float(probs[arm])) < 0.015  # ~4 standard errors
        assert bool(ts.truncated.all()) and not bool(ts.terminated.any())
        np.testing.assert_array_equal(ts.success, arm == 4)  # success = pulled a best arm
        np.testing.assert_array_equal(np.asarray(ts.observation), 0.0)


def test_bandit_task_unchanged_across_auto_reset():
    # Arm 0 always pays, the others never: every pull, in every one-step episode, must agree.
    task = BanditTask(probs=jnp.array([1.0, 0.0, 0.0, 0.0, 0.0], jnp.float32))
    steps = num_rollout_steps(BANDIT)
    _, rec = batched_rollout(
        BANDIT, steps, rollout_inputs(key(12), BATCH), broadcast_task(task, BATCH)
    )
    actions = np.asarray(rec.action)
    assert (actions == 0).any() and (actions != 0).any()
    np.testing.assert_array_equal(
        np.asarray(rec.timestep.reward), (actions == 0).astype(np.float32)
    )
    assert bool(rec.timestep.truncated.all())  # every pull is a one-step episode


def test_bandit_pull_is_a_one_step_episode():
    task = BanditTask(probs=jnp.full((5,), 0.5))
    state, _ = BANDIT.reset(key(0), task)
    assert isinstance(state, BanditState) and int(state.t) == 0
    state, ts = BANDIT.step(key(1), state, jnp.int32(2), task)
    assert int(state.t) == 1 and bool(ts.truncated) and not bool(ts.terminated)
    assert bool(ts.success)  # all arms tie, so every arm is a best arm


# ---------------------------------------------------------------------------------------------
# Random tabular MDPs
# ---------------------------------------------------------------------------------------------

MDP = bench("tabular-mdp-n10").env


@functools.partial(jax.jit, static_argnums=0)
def _mdp_step_many(env, keys, state, action, task):
    return jax.vmap(lambda k: env.step(k, state, action, task))(keys)


def test_tabular_mdp_reset_starts_in_state_zero():
    assert MDP == TabularMDP(num_states=10, num_actions=5, max_episode_steps=10)
    task = bench("tabular-mdp-n10").sample_train_task(key(20))
    states, ts = jax.vmap(MDP.reset, in_axes=(0, None))(jax.random.split(key(21), 64), task)
    np.testing.assert_array_equal(np.asarray(states.s), 0)
    np.testing.assert_array_equal(
        np.asarray(ts.observation), np.eye(10, dtype=np.float32)[[0] * 64]
    )


@pytest.mark.parametrize("s", [0, 7])
def test_tabular_mdp_rewards_and_transitions_match_task(s):
    task = bench("tabular-mdp-n10").sample_train_task(key(22))
    assert task.mean_rewards.shape == (10, 5) and task.transitions.shape == (10, 5, 10)
    np.testing.assert_allclose(np.asarray(task.transitions.sum(-1)), 1.0, atol=1e-5)
    keys = jax.random.split(key(23 + s), 20_000)
    state = TabularMDPState(s=jnp.int32(s), t=jnp.int32(0))
    for a in range(5):
        next_state, ts = _mdp_step_many(MDP, keys, state, jnp.int32(a), task)
        r = np.asarray(ts.reward)
        assert abs(r.mean() - float(task.mean_rewards[s, a])) < 0.035  # se = 0.007
        assert abs(r.std() - 1.0) < 0.03
        freq = np.bincount(np.asarray(next_state.s), minlength=10) / len(keys)
        np.testing.assert_allclose(freq, np.asarray(task.transitions[s, a]), atol=0.015)
        np.testing.assert_array_equal(
            np.asarray(ts.observation), np.eye(10, dtype=np.float32)[np.asarray(next_state.s)]
        )
        assert not bool(ts.done.any())


def test_tabular_mdp_task_unchanged_across_auto_reset():
    # Deterministic cycle s -> s + 1 and mean reward 10 s + a identify the task at every step.
    s_idx, a_idx = np.meshgrid(np.arange(10), np.arange(5), indexing="ij")
    mu = jnp.asarray(10.0 * s_idx + a_idx, jnp.float32)
    nxt = np.eye(10, dtype=np.float32)[(np.arange(10) + 1) % 10]
    task = TabularMDPTask(mean_rewards=mu, transitions=jnp.asarray(np.repeat(nxt[:, None], 5, 1)))
    steps = num_rollout_steps(MDP)  # 25: two and a half episodes
    inputs = rollout_inputs(key(31), BATCH)
    _, rec = batched_rollout(MDP, steps, inputs, broadcast_task(task, BATCH))
    final_state = np.argmax(np.asarray(rec.final_observation), -1)
    step_in_episode = np.broadcast_to(np.arange(steps) % 10, (BATCH, steps))
    np.testing.assert_array_equal(final_state, (step_in_episode + 1) % 10)
    prev_state = step_in_episode  # starts in 0 every episode, moves +1 per step
    residual = np.asarray(rec.timestep.reward) - (10.0 * prev_state + np.asarray(rec.action))
    assert np.all(np.abs(residual) < 6.0)
    assert abs(residual.mean()) < 0.1 and abs(residual.std() - 1.0) < 0.1
    np.testing.assert_array_equal(np.asarray(rec.timestep.truncated), step_in_episode == 9)


# ---------------------------------------------------------------------------------------------
# 2D point navigation (MAML dense, PEARL dense and sparse)
# ---------------------------------------------------------------------------------------------


def _point_step(env, position, action, goal, t=0):
    state = PointState(position=jnp.asarray(position, jnp.float32), t=jnp.int32(t))
    goal = GoalTask(jnp.asarray(goal, jnp.float32))
    return env.step(key(0), state, jnp.asarray(action, jnp.float32), goal)


def test_maml_point_nav_dense_reward_and_clipping():
    env = bench("point-nav").env
    assert env.max_episode_steps == 100
    state, ts = env.reset(key(0), GoalTask(jnp.array([0.3, -0.2])))
    np.testing.assert_array_equal(np.asarray(state.position), [0.0, 0.0])
    state, ts = _point_step(env, [0.0, 0.0], [1.0, 1.0], [0.3, -0.2])
    np.testing.assert_allclose(np.asarray(ts.observation), [0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(float(ts.reward), -np.sqrt(0.2**2 + 0.3**2), rtol=1e-5)
    assert not bool(ts.done) and not bool(ts.success)
    # Negative actions clip to -0.1, small ones pass through unchanged.
    _, ts = _point_step(env, [0.2, 0.2], [-5.0, 0.03], [0.3, -0.2])
    np.testing.assert_allclose(np.asarray(ts.observation), [0.1, 0.23], rtol=1e-6)
    np.testing.assert_allclose(float(ts.reward), -np.hypot(0.2, 0.43), rtol=1e-5)


def test_maml_point_nav_terminates_within_tolerance_per_coordinate():
    env = bench("point-nav").env
    # 0.005 off in each coordinate: terminated (and a success).
    _, ts = _point_step(env, [0.0, 0.0], [1.0, 1.0], [0.105, 0.095])
    assert bool(ts.terminated) and not bool(ts.truncated) and bool(ts.success)
    # 0.015 off in one coordinate only: not terminated.
    _, ts = _point_step(env, [0.0, 0.0], [1.0, 1.0], [0.115, 0.1])
    assert not bool(ts.terminated)
    # Reaching the goal on the last step is a termination, not a truncation.
    _, ts = _point_step(env, [0.0, 0.0], [1.0, 1.0], [0.1, 0.1], t=99)
    assert bool(ts.terminated) and not bool(ts.truncated)
    _, ts = _point_step(env, [0.0, 0.0], [1.0, 1.0], [0.4, 0.1], t=99)
    assert bool(ts.truncated) and not bool(ts.terminated)


def test_pearl_sparse_reward():
    env = bench("point-nav-sparse").env
    assert env.max_episode_steps == 20
    goal = [1.0, 0.0]
    _, ts = _point_step(env, [0.9, 0.0], [0.05, 0.0], goal)  # distance 0.05
    np.testing.assert_allclose(float(ts.reward), 0.95, rtol=1e-5)
    _, ts = _point_step(env, [0.71, 0.0], [0.1, 0.0], goal)  # distance 0.19
    np.testing.assert_allclose(float(ts.reward), 0.81, rtol=1e-4)
    _, ts = _point_step(env, [0.69, 0.0], [0.1, 0.0], goal)  # distance 0.21
    assert float(ts.reward) == 0.0
    _, ts = _point_step(env, [0.0, 0.0], [0.1, 0.1], goal)  # far away
    assert float(ts.reward) == 0.0
    assert not bool(ts.terminated)  # PEARL's variants never terminate early
    state, _ = env.reset(key(1), GoalTask(jnp.array(goal)))
    np.testing.assert_array_equal(np.asarray(state.position), [0.0, 0.0])


def test_pearl_sparse_goals_on_upper_half_circle():
    b = bench("point-nav-sparse")
    goals = np.asarray(b.distribution.tasks.goal)
    assert goals.shape == (100, 2)
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 1.0, atol=1e-6)
    assert goals[:, 1].min() >= -1e-6
    angles = np.arccos(np.clip(goals[:, 0], -1.0, 1.0))  # upper half: angle = arccos(x)
    np.testing.assert_allclose(np.diff(np.sort(angles)), np.pi / 99, atol=1e-3)
    np.testing.assert_allclose([angles.min(), angles.max()], [0.0, np.pi], atol=1e-3)


def test_pearl_dense_start_is_uniform():
    env = bench("point-nav-dense").env
    assert env.max_episode_steps == 20 and env.goal_tolerance is None
    assert env.start == "uniform" and env.start_range == 1.0
    _, ts0, rec = task_batch_rollout("point-nav-dense")
    starts = np.asarray(ts0.observation)  # 64 starts, one per key
    assert starts.min() >= -1.0 and starts.max() <= 1.0
    assert starts.min() < -0.8 and starts.max() > 0.8
    assert len({tuple(p) for p in starts.tolist()}) == BATCH
    # Auto-resets draw fresh starts too (the goal stays: see the next test).
    done = np.asarray(rec.timestep.done)
    resets = np.asarray(rec.timestep.observation)[done]
    assert len(resets) >= BATCH and np.abs(resets).max() <= 1.0
    assert len({tuple(p) for p in resets.tolist()}) == len(resets)


@pytest.mark.parametrize("name", ["point-nav", "point-nav-dense", "point-nav-sparse"])
def test_point_nav_task_unchanged_across_auto_reset(name):
    env = bench(name).env
    tasks, _, rec = task_batch_rollout(name)
    # Every reward, in every episode, is the task's reward at the reached position.
    expected = jax.vmap(jax.vmap(env.reward, in_axes=(0, None)))(rec.final_observation, tasks)
    np.testing.assert_allclose(np.asarray(rec.timestep.reward), np.asarray(expected), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------------------------

VARIBAD = bench("grid-varibad").env
NAV2D = bench("grid-nav2d").env
SIGN = bench("sign-grid").env
NOOP, UP, RIGHT, DOWN, LEFT = range(5)


def _grid_step(env, position, action, task, t=0):
    state = GridState(position=jnp.asarray(position, jnp.int32), t=jnp.int32(t))
    return env.step(key(0), state, jnp.int32(action), task)


def _cell_of(obs, width):
    idx = int(np.argmax(np.asarray(obs)[: width * width]))
    return idx % width, idx // width


def test_varibad_goals_exclude_start_block():
    goals = [tuple(g) for g in np.asarray(varibad_goals().goal).tolist()]
    assert len(goals) == len(set(goals)) == 21
    assert all(0 <= x < 5 and 0 <= y < 5 for x, y in goals)
    assert not {(0, 0), (0, 1), (1, 0), (1, 1)} & set(goals)
    b = bench("grid-varibad")
    assert b.distribution.num_tasks == 21 and b.episodes_per_trial == 4
    assert VARIBAD.max_episode_steps == 15 and VARIBAD.start == (0, 0)


def test_varibad_reward_and_walls():
    task = GridGoalTask(goal=jnp.array([2, 1], jnp.int32))
    # Walls: left / down from the start corner and up / right from the far corner stay put.
    for pos, action in [((0, 0), LEFT), ((0, 0), DOWN), ((4, 4), UP), ((4, 4), RIGHT)]:
        state, ts = _grid_step(VARIBAD, pos, action, task)
        assert tuple(np.asarray(state.position).tolist()) == pos
        assert _cell_of(ts.observation, 5) == pos
        assert float(ts.reward) == pytest.approx(-0.1)
    # Moves: up = +y, right = +x.
    state, ts = _grid_step(VARIBAD, (1, 1), UP, task)
    assert tuple(np.asarray(state.position).tolist()) == (1, 2)
    assert float(ts.reward) == pytest.approx(-0.1) and not bool(ts.success)
    state, ts = _grid_step(VARIBAD, (1, 1), RIGHT, task)
    assert tuple(np.asarray(state.position).tolist()) == (2, 1)
    assert float(ts.reward) == pytest.approx(1.0) and bool(ts.success)
    assert not bool(ts.terminated)  # VariBAD's grid never terminates on the goal
    # Staying on the goal keeps paying +1.
    _, ts = _grid_step(VARIBAD, (2, 1), NOOP, task)
    assert float(ts.reward) == pytest.approx(1.0)
    _, ts = _grid_step(VARIBAD, (2, 1), NOOP, task, t=14)
    assert bool(ts.truncated) and not bool(ts.terminated)


def test_nav2d_goals_and_termination():
    goals = [tuple(g) for g in np.asarray(nav2d_goals().goal).tolist()]
    assert len(goals) == len(set(goals)) == 31
    assert all(0 <= x < 11 and 0 <= y < 11 for x, y in goals)
    assert (5, 0) not in goals and NAV2D.start == (5, 0)
    assert {(10 - x, y) for x, y in goals} == set(goals)  # symmetric about the start column
    assert bench("grid-nav2d").distribution.num_tasks == 31
    task = GridGoalTask(goal=jnp.array([10, 4], jnp.int32))
    _, ts = _grid_step(NAV2D, (9, 4), RIGHT, task)
    assert bool(ts.terminated) and float(ts.reward) == 1.0 and bool(ts.success)
    _, ts = _grid_step(NAV2D, (9, 4), UP, task)
    assert not bool(ts.done) and float(ts.reward) == 0.0
    _, ts = _grid_step(NAV2D, (9, 4), RIGHT, task, t=39)
    assert bool(ts.terminated) and not bool(ts.truncated)


@pytest.mark.parametrize("name", ["grid-varibad", "grid-nav2d"])
def test_grid_rewards_follow_the_same_goal_across_auto_reset(name):
    env = bench(name).env
    tasks, _, rec = task_batch_rollout(name)
    cells = np.argmax(np.asarray(rec.final_observation), -1)
    goal = np.asarray(tasks.goal)
    on_goal = cells == (goal[:, 1] * env.width + goal[:, 0])[:, None]
    expected = np.where(on_goal, env.goal_reward, env.step_reward)
    np.testing.assert_allclose(np.asarray(rec.timestep.reward), expected, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(rec.timestep.success), on_goal)
    np.testing.assert_array_equal(
        np.asarray(rec.timestep.terminated), on_goal & env.terminate_on_goal
    )


def test_scripted_path_reaches_same_goal_every_episode():
    # Same action script, repeated over auto-resets, must hit the goal at the same step.
    task = GridGoalTask(goal=jnp.array([2, 3], jnp.int32))
    script = jnp.array([RIGHT, RIGHT, UP, UP, UP] + [NOOP] * 10, jnp.int32)
    assert script.shape[0] == VARIBAD.max_episode_steps

    @jax.jit
    def run(actions):
        state, _ = VARIBAD.reset(key(0), task)

        def body(state, a):
            state, ts, _ = step_auto_reset(VARIBAD, key(0), state, a, task)
            return state, ts.reward

        return jax.lax.scan(body, state, actions)[1]

    rewards = np.asarray(run(jnp.tile(script, 3))).reshape(3, 15)
    expected = np.array([-0.1] * 4 + [1.0] * 11, np.float32)
    for episode in rewards:
        np.testing.assert_allclose(episode, expected, atol=1e-6)


def test_sign_grid_tasks_and_reading_only_on_sign_cell():
    tasks, groups = sign_grid_tasks(SIGN)
    signs = np.asarray(tasks.sign)
    assert signs.shape == (28, 2) and set(signs[:, 1]) == {0, 1}
    pairs = {(int(s[0]), int(s[1]), int(g)) for s, g in zip(signs, tasks.goal_index, strict=True)}
    assert len(pairs) == 28
    np.testing.assert_array_equal(groups, signs[:, 1] * 7 + signs[:, 0])

    # Random rollouts in all 28 tasks: the reading is visible exactly on the sign cell.
    rep = jax.tree_util.tree_map(lambda x: x[np.arange(BATCH) % 28], tasks)
    steps = num_rollout_steps(SIGN)
    _, rec = batched_rollout(SIGN, steps, rollout_inputs(key(50), BATCH), rep)
    obs = np.asarray(rec.final_observation)
    cells = SIGN.num_cells
    assert obs.shape[-1] == SIGN.observation_space.shape[0] == cells + 6
    pos_cell = np.argmax(obs[..., :cells], -1)
    np.testing.assert_array_equal(obs[..., :cells].sum(-1), 1.0)
    # Coordinates scaled to [0, 1]: the agent's agree with its one-hot cell, the sign's are fixed.
    np.testing.assert_allclose(obs[..., cells] * 6, pos_cell % 7, atol=1e-5)
    np.testing.assert_allclose(obs[..., cells + 1] * 6, pos_cell // 7, atol=1e-5)
    sign_xy = np.asarray(rep.sign, np.float32) / 6
    np.testing.assert_allclose(
        obs[..., cells + 2 : cells + 4], np.broadcast_to(sign_xy[:, None], obs[..., :2].shape)
    )
    sign_cell = np.asarray(rep.sign[:, 1] * 7 + rep.sign[:, 0])
    reading = obs[..., cells + 4 :]
    on_sign = pos_cell == sign_cell[:, None]
    assert on_sign.any() and (~on_sign).any()
    assert np.all(reading[~on_sign] == 0.0)
    expected = np.eye(2, dtype=np.float32)[np.asarray(rep.goal_index)]
    np.testing.assert_array_equal(
        reading[on_sign], np.broadcast_to(expected[:, None], reading.shape)[on_sign]
    )
    # Rewards: +1 at the correct goal, -1 at the wrong one, both terminate; 0 elsewhere.
    goal_cells = np.array([6 * 7 + 0, 6 * 7 + 6])
    correct = pos_cell == goal_cells[np.asarray(rep.goal_index)][:, None]
    wrong = np.isin(pos_cell, goal_cells) & ~correct
    assert correct.any() and wrong.any()
    reward = np.asarray(rec.timestep.reward)
    np.testing.assert_array_equal(reward, np.where(correct, 1.0, np.where(wrong, -1.0, 0.0)))
    np.testing.assert_array_equal(np.asarray(rec.timestep.terminated), correct | wrong)
    np.testing.assert_array_equal(np.asarray(rec.timestep.success), correct)


def test_sign_grid_hand_cases():
    task = SignTask(sign=jnp.array([2, 0], jnp.int32), goal_index=jnp.int32(1))
    _, ts = SIGN.reset(key(0), task)
    assert _cell_of(ts.observation, 7) == (3, 3)
    np.testing.assert_array_equal(np.asarray(ts.observation[-2:]), [0.0, 0.0])
    state = GridState(position=jnp.array([3, 0], jnp.int32), t=jnp.int32(0))
    _, ts = SIGN.step(key(0), state, jnp.int32(LEFT), task)
    np.testing.assert_array_equal(np.asarray(ts.observation[-2:]), [0.0, 1.0])
    assert float(ts.reward) == 0.0 and not bool(ts.done)
    _, ts = _grid_step(SIGN, (5, 6), RIGHT, task)  # correct goal (6, 6)
    assert float(ts.reward) == 1.0 and bool(ts.terminated) and bool(ts.success)
    _, ts = _grid_step(SIGN, (1, 6), LEFT, task)  # wrong goal (0, 6)
    assert float(ts.reward) == -1.0 and bool(ts.terminated) and not bool(ts.success)
    _, ts = _grid_step(SIGN, (6, 6), NOOP, SignTask(task.sign, jnp.int32(0)))
    assert float(ts.reward) == -1.0 and bool(ts.terminated)


def test_env_constructor_validates_config():
    with pytest.raises(ValueError, match="reward_type"):
        PointNavigation(reward_type="squared")
    with pytest.raises(ValueError, match="start"):
        PointNavigation(start="corner")
    assert GridNavigation() == VARIBAD
    assert SignGrid() == SIGN
