"""The Gymnasium adapter passes Gymnasium's own environment checker (JAX and MuJoCo families)."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")

import jax  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import adaptrl  # noqa: E402
from adaptrl.envs.gym_adapter import GymnasiumEnv, GymnasiumVectorEnv  # noqa: E402


def first_task(bench):
    return jax.tree.map(lambda x: x[0], bench.test_tasks)


@pytest.mark.parametrize("name", ["point-nav", "grid-varibad", "cheetah-vel", "ant-goal"])
def test_env_passes_gymnasium_checker(name):
    bench = adaptrl.make(name, num_test_tasks=2)
    env = GymnasiumEnv(bench.env, first_task(bench))
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs, again)
    obs2, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(reward, float) and isinstance(terminated, bool) and "success" in info


def test_episode_ends_at_the_time_limit_and_task_is_kept():
    bench = adaptrl.make("cheetah-vel", num_test_tasks=2)
    env = GymnasiumEnv(bench.env, first_task(bench))
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    for t in range(bench.env.max_episode_steps):
        _, reward, terminated, truncated, _ = env.step(zero)
        assert not terminated
        assert truncated == (t == bench.env.max_episode_steps - 1)
    target = float(bench.test_tasks.velocity[0])
    assert reward == pytest.approx(-abs(0.0 - target), abs=0.2)  # standing still, tracking error


@pytest.mark.parametrize("name", ["point-nav", "hopper-rand-params"])
def test_vector_env_autoresets_in_the_same_step(name):
    bench = adaptrl.make(name, num_test_tasks=3)
    venv = GymnasiumVectorEnv(bench.env, bench.test_tasks)
    assert venv.num_envs == 3
    obs, _ = venv.reset(seed=1)
    assert obs.shape == (3,) + bench.env.observation_space.shape
    assert venv.observation_space.contains(obs)
    again, _ = venv.reset(seed=1)
    np.testing.assert_array_equal(obs, again)
    ended = 0
    for _ in range(bench.env.max_episode_steps):
        obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
        assert rew.shape == term.shape == trunc.shape == (3,)
        if (term | trunc).any():
            done = term | trunc
            assert np.array_equal(info["_final_obs"], done)
            assert not np.array_equal(info["final_obs"][done], obs[done])  # reset obs returned
            ended += int(done.sum())
    assert ended >= 3  # every env hit at least its time limit
