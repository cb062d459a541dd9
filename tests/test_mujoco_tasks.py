"""MuJoCo task families: registry, task distributions, task rewards, random physics, backends."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")  # the CI installs the extra; this only guards bare installs
gym = pytest.importorskip("gymnasium")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import adaptrl  # noqa: E402
from adaptrl.envs import mujoco_tasks as mt  # noqa: E402
from adaptrl.envs.registry import _REGISTRY  # noqa: E402
from adaptrl.physics import native  # noqa: E402
from adaptrl.physics.robots import MujocoNotInstalledError, model_constants  # noqa: E402
from adaptrl.rollout.trial import step_auto_reset  # noqa: E402


def batch(tree, n):
    return jax.tree.map(lambda x: jnp.stack([x] * n), tree)


def run_steps(env, keys, tasks, actions):
    """Jitted: reset len(keys) envs, apply actions (T, B, nu); returns (TimeSteps, final states)."""

    def run(keys, tasks, actions):
        states, _ = jax.vmap(env.reset)(keys, tasks)

        def body(states, a):
            states, ts = jax.vmap(env.step, in_axes=(None, 0, 0, 0))(keys[0], states, a, tasks)
            return states, (ts, states)

        return jax.lax.scan(body, states, actions)[1]

    return jax.jit(run)(keys, tasks, actions)


def random_actions(robot, steps, n, seed=0, scale=1.0):
    c = model_constants(robot)
    rng = np.random.default_rng(seed)
    a = scale * rng.uniform(c["ctrl_low"], c["ctrl_high"], (steps, n, c["nu"]))
    return jnp.asarray(a.astype(np.float32))


# ------------------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", sorted(mt.FAMILIES))
def test_family_builds_samples_and_steps(name):
    bench = adaptrl.make(name, num_test_tasks=8)
    env = bench.env
    assert bench.episodes_per_trial == mt.EPISODES_PER_TRIAL and env.max_episode_steps == 200
    tasks = bench.test_tasks
    keys = jax.random.split(jax.random.key(0), 8)
    train = jax.jit(jax.vmap(bench.sample_train_task))(keys)
    assert jax.tree.structure(train) == jax.tree.structure(tasks)
    ts, _ = run_steps(env, keys, tasks, random_actions(env.robot, 2, 8))
    assert ts.observation.shape == (2, 8) + env.observation_space.shape
    assert ts.observation.dtype == jnp.float32 and ts.reward.dtype == jnp.float32
    assert (
        np.isfinite(np.asarray(ts.observation)).all() and np.isfinite(np.asarray(ts.reward)).all()
    )


def test_task_distributions_have_the_published_ranges():
    keys = jax.random.split(jax.random.key(1), 4000)
    sample = lambda name: jax.jit(jax.vmap(_REGISTRY[name].build()[1].sample))(keys)  # noqa: E731
    v = np.asarray(sample("cheetah-vel").velocity)
    assert v.min() >= 0 and v.max() <= 3 and v.max() > 2.9 and abs(v.mean() - 1.5) < 0.05
    v = np.asarray(sample("cheetah-vel-maml").velocity)
    assert v.min() >= 0 and v.max() <= 2 and v.max() > 1.9
    d = np.asarray(sample("cheetah-dir").direction)
    assert set(np.unique(d[:, 0])) == {-1.0, 1.0} and np.all(d[:, 1] == 0)
    d = np.asarray(sample("ant-dir-2d").direction)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-6)
    assert np.all(np.abs(d.mean(axis=0)) < 0.05)  # uniform angle
    g = np.asarray(sample("ant-goal").goal)
    r = np.linalg.norm(g, axis=1)
    assert r.max() <= 3.0 + 1e-6 and r.max() > 2.95
    assert abs(np.mean(r < 1.5) - 0.25) < 0.03  # uniform on the disk: P(r < R/2) = 1/4
    p = sample("hopper-rand-params")
    for leaf in jax.tree.leaves(p):
        assert np.asarray(leaf).min() >= -3 and np.asarray(leaf).max() <= 3
    assert p.body_mass.shape == (4000, model_constants("hopper")["nbody"])
    e = sample("hopper-epopt")
    for field, (_, _, lo, hi) in mt.EPOPT_RANGES["hopper"].items():
        x = np.asarray(getattr(e, field))
        assert x.min() >= lo and x.max() <= hi, field
    assert abs(float(np.mean(e.torso_mass)) - 6.0) < 0.1
    assert np.all(np.isnan(np.asarray(sample("cheetah-epopt").torso_mass)))


def test_importing_adaptrl_does_not_import_mujoco():
    code = (
        "import sys, adaptrl; assert 'cheetah-vel' in adaptrl.list_envs(); "
        "print('mujoco' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_mujoco_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # makes `import mujoco` fail
    with pytest.raises(MujocoNotInstalledError, match=r'pip install -e "\.\[mujoco\]"'):
        _REGISTRY["cheetah-vel"].build()


# ------------------------------------------------------------------------- task rewards
def _gym_reference(gym_id, noise, nq):
    ref = gym.make(gym_id).unwrapped
    ref.reset(seed=0)
    mujoco.mj_resetData(ref.model, ref.data)
    ref.set_state(ref.init_qpos + noise[:nq], ref.init_qvel + noise[nq:])
    return ref


@pytest.mark.parametrize(
    "name", ["cheetah-vel", "cheetah-dir", "ant-dir-2d", "ant-goal", "humanoid-dir"]
)
def test_task_rewards_match_their_definition_on_gymnasium_states(name):
    """Family rewards recomputed from Gymnasium's own velocities, positions and costs."""
    bench = adaptrl.make(name, num_test_tasks=2)
    env, tasks = bench.env, bench.test_tasks
    c = model_constants(env.robot)
    keys = jax.random.split(jax.random.key(5), 2)
    actions = random_actions(env.robot, 20, 2, seed=1, scale=0.5)
    ts, states = run_steps(env, keys, tasks, actions)
    gym_id = {"half_cheetah": "HalfCheetah-v5", "ant": "Ant-v5", "humanoid": "Humanoid-v5"}
    for b in range(2):
        noise = np.asarray(states.physics.noise[0, b], np.float64)
        ref = _gym_reference(gym_id[env.robot], noise, c["nq"])
        task = jax.tree.map(lambda x, b=b: np.asarray(x[b]), tasks)
        for t in range(20):
            a = np.asarray(actions[t, b], np.float64)
            _, _, _, _, info = ref.step(a)
            if name == "cheetah-vel":
                want = -abs(info["x_velocity"] - task.velocity) - 0.05 * np.sum(a**2)
            elif name == "cheetah-dir":
                want = task.direction[0] * info["x_velocity"] - 0.05 * np.sum(a**2)
            elif name == "ant-goal":
                xy = ref.data.body("torso").xpos[:2]
                want = -np.abs(xy - task.goal).sum() - 0.1 * np.sum(a**2) + info["reward_contact"]
            else:  # direction along a 2-D unit vector, v5 bonus and costs
                v = np.array([info["x_velocity"], info["y_velocity"]])
                w = 1.25 if env.robot == "humanoid" else 1.0
                want = (
                    w * v @ task.direction
                    + info["reward_survive"]
                    + info["reward_ctrl"]
                    + info["reward_contact"]
                )
            np.testing.assert_allclose(
                ts.reward[t, b], want, rtol=1e-5, atol=1e-5, err_msg=f"t={t}"
            )


# ------------------------------------------------------------------------ random physics
def test_rand_params_slots_are_independent_and_rewritten():
    """Per-env physics: unit multipliers reproduce the default model bit for bit; each env of a
    batch gets its own model (same result as when its task fills the batch); slots are
    rewritten when the task in a slot changes (swapped order gives swapped results)."""
    env = mt.Locomotion(robot="hopper", max_episode_steps=1000, terminate_when_unhealthy=False)
    keys = jax.random.split(jax.random.key(2), 2)
    actions = random_actions("hopper", 30, 2, seed=3)
    p = jax.vmap(lambda k: mt.sample_rand_params(k, "hopper"))(keys)
    run = jax.jit(lambda k, tasks, a: run_steps(env, k, tasks, a)[1].physics.words)
    same_key = jnp.stack([keys[0], keys[0]])
    same_act = jnp.stack([actions[:, 0], actions[:, 0]], axis=1)
    base = run(same_key, batch(mt.forward_task(), 2), same_act)
    unit = run(same_key, jax.tree.map(jnp.zeros_like, p), same_act)
    np.testing.assert_array_equal(unit, base)
    both = np.asarray(run(same_key, p, same_act))
    assert not np.array_equal(both[:, 0], both[:, 1])  # different physics, same start and actions
    for b in range(2):
        alone = run(same_key, jax.tree.map(lambda x, b=b: jnp.stack([x[b], x[b]]), p), same_act)
        np.testing.assert_array_equal(np.asarray(alone)[:, 1 - b], both[:, b])
    swapped = run(same_key, jax.tree.map(lambda x: x[::-1], p), same_act)
    np.testing.assert_array_equal(np.asarray(swapped)[:, ::-1], both)
    # The slot models really hold the task's values; the shared default model is untouched.
    host = native.get_host(env.spec)
    mass = np.asarray(env.model_fields(jax.tree.map(lambda x: x[1], p))["body_mass"])
    if native.use_ffi():  # the FFI path keeps its slot models in C++
        np.testing.assert_allclose(host.ffi_slot_field(0, "body_mass"), mass, rtol=1e-6)
    else:
        np.testing.assert_allclose(host.slot_models[0].body_mass, mass, rtol=1e-6)
    np.testing.assert_array_equal(host.model.body_mass, model_constants("hopper")["body_mass"])


def test_epopt_sets_absolute_values():
    env = mt.Locomotion(robot="hopper")
    task = mt.EPOptTask(*(jnp.float32(x) for x in (2.1, 2.6, 0.9, 5.5)))
    fields = {k: np.asarray(v) for k, v in env.model_fields(task).items()}
    base = model_constants("hopper")
    assert np.all(fields["geom_friction"][:, 0] == np.float32(2.1))
    np.testing.assert_allclose(fields["geom_friction"][:, 1:], base["geom_friction"][:, 1:], 1e-6)
    assert np.all(fields["dof_damping"][3:] == np.float32(2.6))
    np.testing.assert_allclose(fields["dof_damping"][:3], base["dof_damping"][:3], 1e-6)
    assert np.all(fields["dof_armature"][3:] == np.float32(0.9))
    assert fields["body_mass"][1] == np.float32(5.5)
    np.testing.assert_allclose(fields["body_mass"][2:], base["body_mass"][2:], rtol=1e-6)


# ------------------------------------------------------------------------------- backends
def test_thread_count_does_not_change_results():
    keys = jax.random.split(jax.random.key(4), 5)
    actions = random_actions("ant", 15, 5, seed=4)
    tasks = batch(mt.forward_task(), 5)
    outs = []
    for nt in (1, 2):
        env = mt.Locomotion(robot="ant", num_threads=nt, terminate_when_unhealthy=False)
        outs.append(np.asarray(run_steps(env, keys, tasks, actions)[1].physics.words))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_auto_reset_starts_a_fresh_episode():
    """After an episode ends inside step_auto_reset, the next step equals a fresh env's first."""
    env = mt.Locomotion(robot="hopper", max_episode_steps=3, terminate_when_unhealthy=False)
    task = mt.forward_task()
    a = jnp.full((3,), 0.3, jnp.float32)
    state, _ = env.reset(jax.random.key(0), task)
    for _ in range(2):
        state, ts = env.step(jax.random.key(0), state, a, task)
    key = jax.random.key(9)
    state, ts, _ = jax.jit(step_auto_reset, static_argnums=0)(env, key, state, a, task)
    assert bool(ts.truncated) and int(state.t) == 0
    fresh, fresh_ts = env.reset(jax.random.split(key)[1], task)
    np.testing.assert_array_equal(ts.observation, fresh_ts.observation)
    after, ts2 = env.step(key, state, a, task)
    fresh_after, fresh_ts2 = env.step(key, fresh, a, task)
    np.testing.assert_array_equal(after.physics.words, fresh_after.physics.words)
    np.testing.assert_array_equal(ts2.observation, fresh_ts2.observation)


def test_native_and_mjx_agree_on_short_horizon():
    """MJX (float32, its own solver) vs native MuJoCo (float64), HalfCheetah with EPOpt physics:
    observations and rewards within 2e-3 over 10 control steps (50 MuJoCo steps); the physics
    task changes both trajectories the same way."""
    keys = jax.random.split(jax.random.key(6), 2)
    tasks = jax.vmap(lambda k: mt.sample_epopt(k, "half_cheetah"))(keys)
    actions = random_actions("half_cheetah", 10, 2, seed=6)
    native_env = mt.Locomotion(robot="half_cheetah", backend="native")
    ts_n, _ = run_steps(native_env, keys, tasks, actions)
    ts_m, states_m = run_steps(native_env.with_backend("mjx"), keys, tasks, actions)
    assert type(states_m.physics).__name__ == "MjxState"
    np.testing.assert_allclose(ts_m.observation, ts_n.observation, atol=2e-3)
    np.testing.assert_allclose(ts_m.reward, ts_n.reward, atol=2e-3)
    ts_default, _ = run_steps(native_env, keys, batch(mt.forward_task(), 2), actions)
    assert np.abs(np.asarray(ts_default.observation - ts_n.observation)).max() > 1e-2


def test_backend_resolution(monkeypatch):
    from adaptrl.physics import resolve_backend

    assert resolve_backend("auto") == ("native" if jax.default_backend() == "cpu" else "mjx")
    monkeypatch.setenv("ADAPTRL_PHYSICS_BACKEND", "mjx")
    assert resolve_backend("auto") == "mjx" and resolve_backend("native") == "native"
    with pytest.raises(ValueError, match="backend"):
        mt.Locomotion(backend="gpu")


@pytest.mark.parametrize("robot", ["ant", "humanoid", "hopper"])
def test_c_kernel_and_python_loop_agree_bitwise(robot):
    """The compiled per-env loop and its pure-Python fallback give identical outputs (steps,
    lazy resets inside steps, eager resets, per-env models)."""
    spec = mt.get_robot(robot)
    fast = native.NativeBatch(spec, 2)
    if fast.kernel is None:
        pytest.fail("the C kernel did not build (is a C compiler installed?)")
    slow = native.NativeBatch(spec, 2)
    slow.kernel = None
    c = model_constants(robot)
    nq, nv, nu, batch = c["nq"], c["nv"], c["nu"], 5
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal((batch, nq + nv))).astype(np.float32)
    params = {}
    if robot == "hopper":  # per-env models: mass multipliers, affine [scale, offset]
        scale = 1.5 ** rng.uniform(-1, 1, (batch, c["nbody"]))
        params = {"body_mass": np.stack([scale, 0 * scale], axis=1).astype(np.float32)}
    outs = {}
    for name, host in (("fast", fast), ("slow", slow)):
        words, floats = host.reset(noise, params)
        trace = [words, floats]
        for t in range(6):
            inputs = np.concatenate(
                [rng.uniform(-0.4, 0.4, (batch, nu)), noise, np.zeros((batch, 1))], axis=1
            ).astype(np.float32)
            if t == 3:
                inputs[::2, -1] = 1.0  # lazy resets of envs 0, 2, 4 inside this step
            words, floats = host.step(words, inputs, params)
            trace += [words, floats]
        outs[name] = trace
        rng = np.random.default_rng(0)  # same controls for the second host
        rng.standard_normal((batch, nq + nv))
        if robot == "hopper":
            rng.uniform(-1, 1, (batch, c["nbody"]))
    for a, b in zip(outs["fast"], outs["slow"], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["cheetah-vel", "hopper-rand-params", "ant-goal", "humanoid-dir"])
def test_ffi_call_and_pure_callback_agree_bitwise(name, monkeypatch):
    """The FFI custom call and the pure_callback path give identical states, observations and
    rewards through step_auto_reset (episodes of 3 steps, so auto-resets happen), including
    per-env random physics whose tasks change between calls (slots rewritten), eager resets
    (Humanoid) and contact forces (Ant)."""
    bench = adaptrl.make(name, num_test_tasks=3)
    env = dataclasses.replace(bench.env, max_episode_steps=3)
    n, steps = 3, 8
    keys = jax.random.split(jax.random.key(11), n)
    task_sets = [jax.jit(jax.vmap(bench.sample_train_task))(keys), bench.test_tasks]
    actions = random_actions(env.robot, steps, n, seed=11)

    def rollout(keys, tasks, actions):
        states, ts0 = jax.vmap(env.reset)(keys, tasks)

        def body(states, inp):
            k, a = inp
            states, ts, final = jax.vmap(functools.partial(step_auto_reset, env))(
                jax.random.split(k, n), states, a, tasks
            )
            return states, (states.physics.words, states.t, ts.observation, ts.reward, final)

        xs = (jax.random.split(keys[0], steps), actions)
        return ts0.observation, jax.lax.scan(body, states, xs)[1]

    outs = {}
    for flag in ("1", "0"):
        monkeypatch.setenv(native.FFI_ENV_VAR, flag)
        if flag == "1" and not native.use_ffi():
            pytest.fail("the FFI call did not build (is a C++ compiler installed?)")
        # A fresh function per flag: the path is chosen at trace time, and traces are cached.
        run = jax.jit(lambda *args: rollout(*args))
        hlo = run.lower(keys, task_sets[0], actions).as_text()
        assert (native.FFI_TARGET in hlo) == (flag == "1")
        assert ("callback" in hlo) == (flag == "0")
        outs[flag] = [run(keys, tasks, actions) for tasks in task_sets]
    assert np.any(np.asarray(outs["1"][0][1][1]) == 0)  # some episodes were auto-reset
    for a, b in zip(jax.tree.leaves(outs["1"]), jax.tree.leaves(outs["0"]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_cheaper_reset_noise_equals_the_sliced_formula():
    """sample_reset_noise computes erf_inv over the whole draw and selects; values must equal the
    sliced formula (qpos part uniform, qvel part normal) bit for bit."""
    from adaptrl.physics.core import sample_reset_noise

    for robot in ("half_cheetah", "ant", "hopper"):
        spec = mt.get_robot(robot)
        c = model_constants(robot)
        nq, nv, s = c["nq"], c["nv"], spec.reset_noise_scale
        keys = jax.random.split(jax.random.key(3), 256)

        def sliced(key, spec=spec, nq=nq, nv=nv, s=s):
            lo = np.nextafter(np.float32(-1), 0)
            u = jax.random.uniform(key, (nq + nv,), jnp.float32, lo, 1.0)
            if spec.reset_noise == "uniform_normal":
                v = s * np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u[nq:])
            else:
                v = s * u[nq:]
            return jnp.concatenate([s * u[:nq], v])

        got = jax.jit(jax.vmap(functools.partial(sample_reset_noise, spec)))(keys)
        np.testing.assert_array_equal(got, jax.jit(jax.vmap(sliced))(keys))


def test_jit_equals_eager_and_vmap_equals_single():
    """Reset and steps give bit-identical results eagerly, jitted, and as one row of a vmap."""
    bench = adaptrl.make("ant-goal", num_test_tasks=3)
    env, tasks = bench.env, bench.test_tasks
    keys = jax.random.split(jax.random.key(8), 3)
    actions = random_actions("ant", 4, 3, seed=8)
    ts_b, states_b = run_steps(env, keys, tasks, actions)
    task = jax.tree.map(lambda x: x[1], tasks)
    state, _ = env.reset(keys[1], task)
    jit_step = jax.jit(env.step)
    for t in range(4):
        eager_state, eager_ts = env.step(keys[0], state, actions[t, 1], task)
        jit_state, jit_ts = jit_step(keys[0], state, actions[t, 1], task)
        batched_ts = jax.tree.map(lambda x, t=t: x[t, 1], ts_b)
        leaves = zip(*(jax.tree.leaves(x) for x in (eager_ts, jit_ts, batched_ts)), strict=True)
        for x, y, z in leaves:
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)
        np.testing.assert_array_equal(eager_state.physics.words, jit_state.physics.words)
        np.testing.assert_array_equal(eager_state.physics.words, states_b.physics.words[t, 1])
        state = eager_state
