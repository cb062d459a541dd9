"""Parity with Gymnasium's v5 MuJoCo environments (native backend).

For the same initial state and the same 1000 actions, adaptrl's ``Locomotion`` (objective
``forward``, i.e. the plain Gymnasium reward) must reproduce Gymnasium's trajectory: the float64
MuJoCo state bit for bit, observations and rewards within 1e-5 (they are float32 in adaptrl),
and the healthy/termination flag at every step. Uniformly random actions make Ant, Hopper,
Walker2d and Humanoid fall; both sides keep stepping past termination, so the termination rule
is compared on many healthy and unhealthy states, not only the first.
"""

from __future__ import annotations

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")  # the CI installs the extra; this only guards bare installs
gym = pytest.importorskip("gymnasium")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from adaptrl.envs.mujoco_tasks import Locomotion, forward_task, state_float64  # noqa: E402
from adaptrl.physics.robots import model_constants  # noqa: E402

STEPS = 1000
BATCH = 2  # two envs per batched call, stepped by two host threads
CASES = [
    ("half_cheetah", "HalfCheetah-v5"),
    ("ant", "Ant-v5"),
    ("hopper", "Hopper-v5"),
    ("walker2d", "Walker2d-v5"),
    ("humanoid", "Humanoid-v5"),
]


def rollout_adaptrl(env: Locomotion, keys, actions):
    """Reset BATCH envs and apply ``actions`` (STEPS, BATCH, nu) in one jitted scan."""
    task = forward_task()

    def run(keys, actions):
        states, ts0 = jax.vmap(env.reset, in_axes=(0, None))(keys, task)

        def body(states, a):
            states, ts = jax.vmap(env.step, in_axes=(None, 0, 0, None))(keys[0], states, a, task)
            return states, (ts, states)

        noise = states.physics.noise  # the reset perturbation, to replay it in Gymnasium
        _, (ts, states) = jax.lax.scan(body, states, actions)
        return ts0, noise, ts, states

    return jax.jit(run)(keys, actions)


@pytest.mark.parametrize("robot,gym_id", CASES)
def test_native_matches_gymnasium_v5(robot, gym_id):
    env = Locomotion(robot=robot, objective="forward", max_episode_steps=10 * STEPS, num_threads=2)
    c = model_constants(robot)
    rng = np.random.default_rng(7)
    actions = rng.uniform(c["ctrl_low"], c["ctrl_high"], (STEPS, BATCH, c["nu"])).astype(np.float32)
    keys = jax.random.split(jax.random.key(3), BATCH)
    ts0, noise, ts, states = rollout_adaptrl(env, keys, jnp.asarray(actions))
    noise = np.asarray(noise, np.float64)
    obs, rew = np.asarray(ts.observation), np.asarray(ts.reward)
    term = np.asarray(ts.terminated)
    exact = state_float64(states)  # (STEPS, BATCH, nstate + 2) float64
    nq, nv = c["nq"], c["nv"]

    ref_qpos = np.empty((STEPS, BATCH, nq))
    ref_qvel = np.empty((STEPS, BATCH, nv))
    ref_obs = np.empty(obs.shape)
    ref_rew = np.empty((STEPS, BATCH))
    ref_term = np.empty((STEPS, BATCH), bool)
    for b in range(BATCH):
        ref = gym.make(gym_id).unwrapped
        ref.reset(seed=0)
        # Gymnasium's reset sequence with adaptrl's noise: zeroed data, set_state (mj_forward).
        mujoco.mj_resetData(ref.model, ref.data)
        ref.set_state(ref.init_qpos + noise[b, :nq], ref.init_qvel + noise[b, nq:])
        np.testing.assert_allclose(np.asarray(ts0.observation[b]), ref._get_obs(), atol=1e-6)
        for t in range(STEPS):
            ref_obs[t, b], ref_rew[t, b], ref_term[t, b], _, _ = ref.step(actions[t, b])
            ref_qpos[t, b], ref_qvel[t, b] = ref.data.qpos, ref.data.qvel

    np.testing.assert_array_equal(exact[..., 1 : 1 + nq], ref_qpos)  # bit for bit
    np.testing.assert_array_equal(exact[..., 1 + nq : 1 + nq + nv], ref_qvel)
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rew, ref_rew, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(term, ref_term)
    if robot == "half_cheetah":
        assert not ref_term.any()
    else:
        # Random actions topple these robots: the termination rule saw both outcomes.
        assert 0 < ref_term.sum() < BATCH * STEPS
