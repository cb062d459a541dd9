"""SAC: the tanh-Gaussian log-density, the soft TD target, learning a probe task, determinism."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

from adaptrl.algos import get_algorithm, sac
from adaptrl.envs.point_nav import GoalTask, PointNavigation
from adaptrl.envs.registry import make
from adaptrl.eval.protocol import meta_test
from adaptrl.tasks.benchmark import Benchmark
from adaptrl.tasks.distribution import FiniteTasks, split_tasks

TINY = sac.SACConfig(hidden_sizes=(64, 64), num_envs=4, steps_per_iteration=5,
                     updates_per_iteration=20, batch_size=128, random_steps=200,
                     learning_rate=1e-3, gamma=0.9, buffer_capacity=20_000)  # fmt: skip


def fixed_goal_benchmark() -> Benchmark:
    """Point robot from the origin to one fixed goal (0.5, 0.5), dense reward, 20 steps."""
    env = PointNavigation(max_episode_steps=20, goal_tolerance=None, success_radius=0.1)
    goals = FiniteTasks(GoalTask(goal=jnp.full((2, 2), 0.5, jnp.float32)))
    return Benchmark("fixed-goal", env, split_tasks(goals, test_fraction=0.5), 1)


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    mean = jnp.array([[0.3, -1.0], [2.0, 0.1]])
    log_std = jnp.array([[-0.5, 0.2], [0.0, -1.5]])
    a, logp = sac.tanh_gaussian_sample(jax.random.PRNGKey(0), mean, log_std)
    u = jnp.arctanh(a)
    expected = (norm.logpdf(u, mean, jnp.exp(log_std)) - jnp.log1p(-(a**2))).sum(-1)
    np.testing.assert_allclose(logp, expected, rtol=1e-4, atol=1e-4)
    assert jnp.all(jnp.abs(a) < 1)


def test_soft_td_target_by_hand():
    nets = sac.make_nets((8,), action_dim=1)
    key = jax.random.PRNGKey(0)
    actor = nets.actor.init(key, jnp.zeros(3))
    critic = nets.critic.init(key, jnp.zeros(3), jnp.zeros(1))
    obs = jax.random.normal(key, (5, 3))
    reward, done = jnp.arange(5.0), jnp.array([0, 0, 1, 0, 1], bool)
    k = jax.random.PRNGKey(7)
    got = sac.td_target(nets, critic, actor, 0.2, reward, done, obs, k, gamma=0.9, reward_scale=2)
    mean, log_std = nets.actor.apply(actor, obs)
    a, logp = sac.tanh_gaussian_sample(k, mean, log_std)
    q = nets.critic.apply(critic, obs, a)
    assert q.shape == (2, 5)
    want = 2 * reward + 0.9 * (1 - done) * (jnp.minimum(q[0], q[1]) - 0.2 * logp)
    np.testing.assert_allclose(got, want, rtol=1e-5)


EAGER_AND_JIT = [pytest.param(lambda f: f, id="eager"), pytest.param(jax.jit, id="jit")]


@pytest.mark.parametrize("wrap", EAGER_AND_JIT)
def test_sac_losses_by_hand(wrap):
    nets = sac.make_nets((8,), action_dim=1)
    key = jax.random.PRNGKey(1)
    actor = nets.actor.init(key, jnp.zeros(3))
    critic = nets.critic.init(key, jnp.zeros(3), jnp.zeros(1))
    obs, action = jax.random.normal(key, (6, 3)), jax.random.uniform(key, (6, 1), minval=-1)
    target = jnp.linspace(-1.0, 1.0, 6)
    loss, q_mean = wrap(lambda c: sac.critic_loss(nets, c, obs, action, target))(critic)
    q = nets.critic.apply(critic, obs, action)
    np.testing.assert_allclose(loss, 0.5 * ((q - target) ** 2).mean(-1).sum(), rtol=1e-5)
    np.testing.assert_allclose(q_mean, q.mean(), rtol=1e-5)
    k = jax.random.PRNGKey(3)
    a_loss, logp_mean = wrap(lambda a: sac.actor_loss(nets, a, critic, 0.3, obs, k))(actor)
    a, logp = sac.tanh_gaussian_sample(k, *nets.actor.apply(actor, obs))
    want = (0.3 * logp - nets.critic.apply(critic, obs, a).min(0)).mean()
    np.testing.assert_allclose(a_loss, want, rtol=1e-5)
    np.testing.assert_allclose(logp_mean, logp.mean(), rtol=1e-5)
    # Entropy -(-1) = 1 above the target -2: the gradient w.r.t. log alpha is positive, so
    # gradient descent lowers alpha; below the target it raises it.
    grad = wrap(jax.grad(sac.alpha_loss))
    np.testing.assert_allclose(grad(0.0, -1.0, -2.0), 3.0)
    np.testing.assert_allclose(grad(0.0, 3.0, -2.0), -1.0)
    mixed = wrap(lambda t, o: sac.polyak(t, o, 0.005))({"w": jnp.zeros(2)}, {"w": jnp.ones(2)})
    np.testing.assert_allclose(mixed["w"], [0.005, 0.005])


def test_sac_learns_fixed_goal_navigation():
    b = fixed_goal_benchmark()
    iterations = 120
    state = sac.init(jax.random.PRNGKey(0), b, TINY, iterations)
    update = jax.jit(sac.make_update(b, TINY, iterations))
    for _ in range(iterations):
        state, metrics = update(state)
    trained = meta_test(b, sac.agent_from_state(state, b, TINY), seeds=[0, 1])
    random = meta_test(b, get_algorithm("random").make_agent(None, b, None), seeds=[0, 1])
    # Straight to the goal earns about -1.4; random actions about -14; staying put -14.1.
    assert random.returns.mean() < -10
    assert trained.returns.mean() > -3.0, trained.returns.mean()
    assert trained.success.mean() == 1.0
    assert np.isfinite(metrics["critic_loss"]) and float(metrics["alpha"]) > 0


def test_update_is_deterministic_and_oracle_sees_the_task():
    b = make("point-nav-dense")
    cfg = dataclasses.replace(TINY, oracle=True, random_steps=0, batch_size=16)
    update = jax.jit(sac.make_update(b, cfg, 2))
    runs = []
    for _ in range(2):
        state = sac.init(jax.random.PRNGKey(3), b, cfg, 2)
        for _ in range(2):
            state, metrics = update(state)
        runs.append((state, metrics))
    leaves = [jax.tree_util.tree_leaves(r[0]) for r in runs]
    for x, y in zip(*leaves, strict=True):
        np.testing.assert_array_equal(x, y)
    # Observation (2) + goal (2); the stored observations end with each transition's goal.
    assert runs[0][0].buffer.data.observation.shape[-1] == 4
    agent = sac.agent_from_state(runs[0][0], b, cfg)
    assert agent.privileged and agent.name == "sac-oracle"


def test_discrete_family_is_refused():
    with pytest.raises(ValueError, match="continuous"):
        sac.init(jax.random.PRNGKey(0), make("bandit-k5-n10"), TINY, 1)
    assert not get_algorithm("sac").supports(make("bandit-k5-n10"))


def test_cli_train_sac_oracle_end_to_end(tmp_path, capsys):
    from adaptrl.cli import main
    from adaptrl.eval.report import load_results

    run = tmp_path / "run"
    rc = main(["train", "sac-oracle", "--env", "point-nav-dense", "--iterations", "3",
               "--eval-seeds", "1", "--no-progress", "--no-references", "--run-dir", str(run),
               "--sac-oracle.hidden-sizes", "16", "--sac-oracle.num-envs", "2",
               "--sac-oracle.updates-per-iteration", "2", "--sac-oracle.batch-size", "8",
               "--sac-oracle.random-steps", "0"])  # fmt: skip
    assert rc == 0
    (r,) = load_results(run / "results")
    assert r.agent == "sac-oracle" and r.privileged and r.returns.shape == (1, 100, 3)
    capsys.readouterr()
