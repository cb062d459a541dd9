"""Non-learning bandit baselines and Gittins index tables (adaptrl.baselines.bandits/gittins)."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import adaptrl
from adaptrl.baselines import bandits
from adaptrl.baselines.gittins import compute_gittins_table, gittins_table
from adaptrl.baselines.random import random_agent
from adaptrl.envs.bandit import BanditTask, BernoulliBandit
from adaptrl.rollout.trial import AgentInput, Transition, initial_agent_input, run_trial


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Gittins tables computed by the tests go to a temporary directory, not ~/.cache.
    monkeypatch.setenv("ADAPTRL_CACHE_DIR", str(tmp_path))


def _batched_runner(env, agent, num_episodes):
    """jit(vmap(run_trial)) -> (tasks, keys) -> Trial with leading axis tasks."""
    return jax.jit(jax.vmap(lambda t, k: run_trial(env, agent, t, k, num_episodes)))


AGENT_FACTORIES = {
    "random": lambda env: random_agent(env),
    "thompson": lambda env: bandits.thompson_sampling(env),
    "ucb1": lambda env: bandits.ucb1(env, c=0.3, prior=(1.0, 1.0)),
    "ucb1_textbook": lambda env: bandits.ucb1(env),
    "eps_greedy": lambda env: bandits.epsilon_greedy(env, epsilon=0.05),
    "greedy": lambda env: bandits.greedy(env),
    "gittins": lambda env: bandits.gittins(env, discount=0.95, horizon=100),
}


# ---------------------------------------------------------------- Gittins index tables


def _exact_index(discount: float, a: float, b: float, depth: int, iters: int = 40) -> float:
    """Slow reference: bisection on the retirement reward, one DP per candidate."""
    lo, hi = a / (a + b), 1.0
    for _ in range(iters):
        lam = 0.5 * (lo + hi)
        retire = lam / (1 - discount)
        s = np.arange(depth + 1)
        value = np.maximum(retire, (a + s) / (a + b + depth) / (1 - discount))
        for n in range(depth - 1, -1, -1):
            p = (a + np.arange(n + 1)) / (a + b + n)
            cont = p + discount * (p * value[1:] + (1 - p) * value[:-1])
            value = np.maximum(retire, cont)
        lo, hi = (lam, hi) if cont[0] > retire else (lo, lam)
    return lo


def test_gittins_known_value():
    # Gittins (1979) tables: Beta(1, 1) arm, discount 0.9 -> 0.7029; discount 0.99 -> 0.8699.
    assert gittins_table(0.9, 10)[0, 0] == pytest.approx(0.7029, abs=1e-4)
    assert compute_gittins_table(0.99, 20)[0, 0] == pytest.approx(0.8699, abs=1e-4)


def test_gittins_matches_bisection_reference():
    table = compute_gittins_table(0.9, 6, depth=150)
    for s, f in [(0, 0), (2, 0), (0, 3), (3, 2)]:
        assert table[s, f] == pytest.approx(_exact_index(0.9, 1 + s, 1 + f, 150), abs=2e-4)


def test_gittins_table_sanity():
    h = 30
    table = gittins_table(0.95, h)
    s, f = np.meshgrid(np.arange(h + 1), np.arange(h + 1), indexing="ij")
    inside = s + f <= h
    mean = (1 + s) / (2 + s + f)
    assert np.all(np.isnan(table[~inside]))
    assert np.all(table[inside] >= mean[inside] - 1e-9)  # exploration bonus is never negative
    assert np.all(table[inside] <= 1.0)
    # More successes -> larger index; more failures -> smaller index.
    for n in range(h):
        layer = table[np.arange(n + 1), n - np.arange(n + 1)]  # s = 0..n at total n
        assert np.all(np.diff(layer) > 0)
    assert np.all(np.diff(table[:, 0][: h + 1]) > 0)
    assert np.all(np.diff(table[0, :][: h + 1]) < 0)


def test_gittins_tends_to_mean_as_discount_vanishes():
    h = 8
    s, f = np.meshgrid(np.arange(h + 1), np.arange(h + 1), indexing="ij")
    mean = np.where(s + f <= h, (1 + s) / (2 + s + f), np.nan)
    np.testing.assert_allclose(compute_gittins_table(0.0, h), mean)
    gaps = [np.nanmax(compute_gittins_table(g, h) - mean) for g in (0.5, 0.1, 0.01)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.01


def test_gittins_index_grows_with_discount():
    values = [gittins_table(g, 5)[1, 1] for g in (0.5, 0.9, 0.99)]
    assert values[0] < values[1] < values[2]


def test_gittins_disk_cache_roundtrip(tmp_path):
    first = gittins_table(0.77, 7)
    files = list((tmp_path / "gittins").glob("*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(np.load(files[0]), first)
    assert gittins_table(0.77, 7) is first  # in-memory cache
    with pytest.raises(ValueError):
        compute_gittins_table(1.0, 5)


# ---------------------------------------------------------------- agents


def test_random_argmax_breaks_ties_uniformly():
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    scores = jnp.array([1.0, 3.0, 3.0, 0.0])
    picks = np.asarray(jax.vmap(lambda k: bandits.random_argmax(k, scores))(keys))
    assert set(np.unique(picks)) == {1, 2}
    assert 0.45 < np.mean(picks == 1) < 0.55
    inf_scores = jnp.array([jnp.inf, 0.5, jnp.inf])
    assert set(np.unique(jax.vmap(lambda k: bandits.random_argmax(k, inf_scores))(keys))) == {0, 2}


def _episode(actions, rewards, valid) -> Transition:
    """A hand-made bandit episode (leading axis = steps)."""
    t = len(actions)
    zeros = jnp.zeros((t,), jnp.float32)
    inp = AgentInput(
        observation=jnp.zeros((t, 1)),
        prev_action=jnp.zeros((t,), jnp.int32),
        prev_reward=zeros,
        prev_done=jnp.zeros((t,), bool),
        first=jnp.zeros((t,), bool),
        episode=jnp.zeros((t,), jnp.int32),
    )
    flags = jnp.zeros((t,), bool)
    return Transition(
        agent_input=inp,
        action=jnp.asarray(actions, jnp.int32),
        reward=jnp.asarray(rewards, jnp.float32),
        next_observation=jnp.zeros((t, 1)),
        terminated=flags,
        truncated=flags,
        success=flags,
        valid=jnp.asarray(valid),
        extras=(),
    )


def test_update_counts_ignores_padding():
    agent = bandits.greedy(3)
    counts = agent.init(jax.random.PRNGKey(0), None)
    ep = _episode([2, 0, 2, 1], [1.0, 0.0, 1.0, 1.0], [True, True, True, False])
    counts = agent.end_episode(jax.random.PRNGKey(1), counts, ep)
    np.testing.assert_array_equal(counts.successes, [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(counts.failures, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(bandits.posterior_mean(counts), [1 / 3, 1 / 2, 3 / 4])


@pytest.mark.parametrize(
    "name", ["greedy", "ucb1", "ucb1_textbook", "gittins", "thompson", "eps_greedy"]
)
def test_deterministic_bandit_finds_the_paying_arm(name):
    env = BernoulliBandit(num_arms=3)
    agent = AGENT_FACTORIES[name](env)
    if name == "eps_greedy":
        agent = bandits.epsilon_greedy(env, epsilon=0.0)
    task = BanditTask(probs=jnp.array([0.0, 1.0, 0.0]))
    trial = jax.jit(lambda k: run_trial(env, agent, task, k, 30))(jax.random.PRNGKey(3))
    actions = np.asarray(trial.transitions.action[:, 0])
    assert np.all(actions[-10:] == 1), actions
    assert trial.episode_return.sum() >= 20


def test_textbook_ucb1_tries_every_arm_first():
    env = BernoulliBandit(num_arms=5)
    task = BanditTask(probs=jnp.array([0.9, 0.1, 0.5, 0.3, 0.7]))
    trial = jax.jit(lambda k: run_trial(env, bandits.ucb1(env), task, k, 5))(jax.random.PRNGKey(0))
    assert sorted(np.asarray(trial.transitions.action[:, 0]).tolist()) == [0, 1, 2, 3, 4]


def test_gittins_with_zero_discount_is_greedy():
    env = BernoulliBandit(num_arms=4)
    task = BanditTask(probs=jnp.array([0.2, 0.6, 0.4, 0.5]))
    run = jax.jit(
        lambda k: jnp.stack(
            [
                run_trial(env, a, task, k, 25).transitions.action[:, 0]
                for a in (bandits.gittins(env, discount=0.0, horizon=25), bandits.greedy(env))
            ]
        )
    )
    for seed in range(3):
        gittins_actions, greedy_actions = np.asarray(run(jax.random.PRNGKey(seed)))
        np.testing.assert_array_equal(gittins_actions, greedy_actions)


@pytest.fixture(scope="module")
def bandit_batch():
    bench = adaptrl.make("bandit-k5-n100")
    tasks = jax.tree_util.tree_map(lambda x: x[:200], bench.test_tasks)
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    return bench, tasks, keys


@pytest.fixture(scope="module")
def random_mean(bandit_batch):
    bench, tasks, keys = bandit_batch
    run = _batched_runner(bench.env, random_agent(bench.env), bench.episodes_per_trial)
    return float(run(tasks, keys).episode_return.sum(-1).mean())


@pytest.mark.parametrize("name", [n for n in AGENT_FACTORIES if n != "random"])
def test_agents_jit_vmap_deterministic_and_beat_random(name, bandit_batch, random_mean):
    bench, tasks, keys = bandit_batch
    agent = AGENT_FACTORIES[name](bench.env)
    run = _batched_runner(bench.env, agent, bench.episodes_per_trial)
    trial = run(tasks, keys)
    returns = np.asarray(trial.episode_return)
    assert returns.shape == (200, 100)
    assert set(np.unique(returns)) <= {0.0, 1.0}
    # Same keys, same trajectories; other keys, other trajectories.
    again = run(tasks, keys)
    np.testing.assert_array_equal(np.asarray(again.transitions.action), trial.transitions.action)
    other = run(tasks, jax.random.split(jax.random.PRNGKey(1), 200))
    assert not np.array_equal(np.asarray(other.transitions.action), trial.transitions.action)
    # Mean of the best of 5 U[0,1] arms is 5/6, so good agents score ~75-80 vs random's ~50.
    assert abs(random_mean - 50.0) < 3.0
    assert returns.sum(-1).mean() > random_mean + 15.0


def test_hyperparameters_can_be_traced(bandit_batch):
    bench, tasks, keys = bandit_batch
    n = bench.episodes_per_trial

    @jax.jit
    def mean_return(c, eps):
        agents = (bandits.ucb1(5, c=c, prior=(1.0, 1.0)), bandits.epsilon_greedy(5, eps))
        trials = [
            jax.vmap(lambda t, k, a=a: run_trial(bench.env, a, t, k, n))(tasks, keys)
            for a in agents
        ]
        return jnp.stack([trial.episode_return.sum(-1).mean() for trial in trials])

    a = np.asarray(mean_return(jnp.float32(0.0), jnp.float32(1.0)))
    b = np.asarray(mean_return(jnp.float32(0.3), jnp.float32(0.0)))
    assert a[1] < 60.0 < b[1]  # eps = 1 is uniformly random
    assert a[0] != b[0]


def test_random_agent_works_for_every_registered_env():
    key = jax.random.PRNGKey(0)
    # Names differing only in the trial length ("-n10", "-n100") share one env: test it once.
    families = {re.sub(r"-n\d+$", "", name): name for name in adaptrl.list_envs()}
    for name in families.values():
        bench = adaptrl.make(name, num_test_tasks=2)
        env = bench.env
        agent = random_agent(env)
        task = jax.tree_util.tree_map(lambda x: x[0], bench.test_tasks)

        @jax.jit
        def act_and_step(key, task, env=env, agent=agent):
            state, ts = env.reset(key, task)
            inp = initial_agent_input(env, ts.observation)
            _, action, _ = agent.act(key, agent.init(key, task), inp)
            env.step(key, state, action, task)  # accepted by the env (shape checked at trace)
            return action

        assert env.action_space.contains(act_and_step(key, task)), name


def test_random_agent_continuous_trial():
    bench = adaptrl.make("point-nav-dense")
    agent = random_agent(bench.env)
    tasks = jax.tree_util.tree_map(lambda x: x[:4], bench.test_tasks)
    trial = _batched_runner(bench.env, agent, 2)(tasks, jax.random.split(jax.random.PRNGKey(0), 4))
    actions = np.asarray(trial.transitions.action)
    space = bench.env.action_space
    assert actions.shape == (4, 2, bench.env.max_episode_steps, 2)
    assert np.all(actions >= space.low) and np.all(actions <= space.high)
    assert np.std(actions) > 0.1 * space.high
