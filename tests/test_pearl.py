"""PEARL: posterior algebra, KL, permutation invariance, the meta-test agent, training plumbing."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adaptrl.algos import pearl
from adaptrl.envs.registry import make
from adaptrl.nets import encoders
from adaptrl.rollout.trial import run_trial

TINY = pearl.PEARLConfig(latent_dim=3, encoder_sizes=(16,), hidden_sizes=(16,),
                         initial_trajectories=1, tasks_per_iteration=2, prior_trajectories=1,
                         extra_posterior_trajectories=1, updates_per_iteration=2, meta_batch=4,
                         batch_size=8, context_batch_size=8, buffer_capacity=200)  # fmt: skip


@pytest.mark.parametrize("wrap", [pytest.param(lambda f: f, id="eager"),
                                  pytest.param(jax.jit, id="jit")])  # fmt: skip
def test_product_of_gaussians_by_hand(wrap):
    pog = wrap(encoders.product_of_gaussians)
    # 1-D: N(1, 1) x N(3, 0.5) -> precision 1 + 2 = 3, mean (1*1 + 3*2) / 3 = 7/3.
    # 2nd dim: N(0, 2) x N(4, 2) -> var 1, mean 2.
    mu = jnp.array([[1.0, 0.0], [3.0, 4.0]])
    var = jnp.array([[1.0, 2.0], [0.5, 2.0]])
    mean, v = pog(mu, var)
    np.testing.assert_allclose(mean, [7 / 3, 2.0], rtol=1e-6)
    np.testing.assert_allclose(v, [1 / 3, 1.0], rtol=1e-6)
    # A masked-out factor is ignored; an empty context is the prior N(0, I).
    mean, v = pog(mu, var, jnp.array([True, False]))
    np.testing.assert_allclose(mean, [1.0, 0.0])
    np.testing.assert_allclose(v, [1.0, 2.0])
    mean, v = pog(mu, var, jnp.array([False, False]))
    np.testing.assert_allclose(mean, [0, 0])
    np.testing.assert_allclose(v, [1, 1])
    # Statistics add: two halves combined give the posterior of the whole context.
    stats, post = wrap(encoders.context_stats), wrap(encoders.posterior)
    s = stats(mu[:1], var[:1]) + stats(mu[1:], var[1:])
    np.testing.assert_allclose(post(s)[0], [7 / 3, 2.0], rtol=1e-6)


@pytest.mark.parametrize("wrap", [pytest.param(lambda f: f, id="eager"),
                                  pytest.param(jax.jit, id="jit")])  # fmt: skip
def test_kl_to_standard_normal_closed_form_and_monte_carlo(wrap):
    kl = wrap(encoders.kl_to_standard_normal)
    mean, var = jnp.array([1.0, 0.0]), jnp.array([2.0, 0.5])
    # 0.5 * [(2 + 1 - 1 - ln 2) + (0.5 - 1 - ln 0.5)] = 0.75
    np.testing.assert_allclose(kl(mean, var), 0.75, rtol=1e-6)
    ones = jnp.ones((200_000, 2))
    z = encoders.sample_latent(jax.random.PRNGKey(0), mean * ones, var * ones)
    log_q = -0.5 * ((z - mean) ** 2 / var + jnp.log(2 * jnp.pi * var)).sum(-1)
    log_p = -0.5 * (z**2 + jnp.log(2 * jnp.pi)).sum(-1)
    np.testing.assert_allclose(jnp.mean(log_q - log_p), 0.75, atol=0.02)
    assert kl(jnp.zeros(3), jnp.ones(3)) == 0.0


def test_encoder_is_permutation_invariant():
    context = jax.random.normal(jax.random.PRNGKey(0), (32, 7))
    perm = jax.random.permutation(jax.random.PRNGKey(1), 32)
    for kind in ("gaussian", "deterministic"):
        enc = encoders.ContextEncoder((16, 16), 4, kind)
        params = enc.init(jax.random.PRNGKey(2), context)
        model = pearl._Model(nets=None, encoder=enc, obs_dim=2, action_dim=2, context_dim=7)
        a = pearl.infer_posterior(model, params, context)
        b = pearl.infer_posterior(model, params, context[perm])
        np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-7)
        # ...and a different context gives a different posterior (the test could fail).
        c = pearl.infer_posterior(model, params, context[:5])
        assert not np.allclose(a[0], c[0])
    assert np.all(np.asarray(a[1]) == 0)  # deterministic: a point


def test_meta_test_agent_refines_posterior_after_each_episode():
    b = make("point-nav-sparse")
    cfg = dataclasses.replace(TINY, initial_trajectories=0)  # an untrained agent will do
    state = pearl.init(jax.random.PRNGKey(0), b, cfg, 1)
    agent = pearl.agent_from_state(state, b, cfg)
    task = jax.tree_util.tree_map(lambda x: x[0], b.test_tasks)
    trial = jax.jit(lambda k: run_trial(b.env, agent, task, k, 3))(jax.random.PRNGKey(1))
    assert trial.episode_return.shape == (3,) and agent.end_episode is not None
    end = agent.end_episode
    carry0 = agent.init(jax.random.PRNGKey(0), None)
    assert float(carry0.stats.count) == 0
    ep = jax.tree_util.tree_map(lambda x: x[0], trial.transitions)
    carry1 = end(jax.random.PRNGKey(2), carry0, ep)
    carry2 = end(jax.random.PRNGKey(3), carry1, ep)
    assert float(carry1.stats.count) == 20 and float(carry2.stats.count) == 40
    # More of the same evidence: a tighter posterior, and a new z drawn each time.
    v1 = encoders.posterior(carry1.stats)[1]
    v2 = encoders.posterior(carry2.stats)[1]
    assert np.all(np.asarray(v2) < np.asarray(v1)) and np.all(np.asarray(v1) < 1.0)
    assert not np.allclose(carry1.z, carry2.z)


def test_update_trains_encoder_through_critic_and_is_deterministic():
    b = make("point-nav-sparse")
    update = jax.jit(pearl.make_update(b, TINY, 2))
    s0 = pearl.init(jax.random.PRNGKey(5), b, TINY, 2)
    s1, m = update(s0)
    s1b, _ = update(s0)  # same state (its key included): the same result
    for x, y in zip(jax.tree_util.tree_leaves(s1), jax.tree_util.tree_leaves(s1b), strict=True):
        np.testing.assert_array_equal(x, y)
    # ... and the key is really used: another key gives other data and other parameters, and
    # the update moves the key on (the next iteration does not reuse this one's randomness).
    s1c, _ = update(s0.replace(key=jax.random.PRNGKey(6)))
    assert not np.array_equal(s1.rl_buffers.data.observation, s1c.rl_buffers.data.observation)
    assert trees_differ(s1.learner, s1c.learner)
    assert trees_differ(s0.learner, pearl.init(jax.random.PRNGKey(6), b, TINY, 2).learner)
    assert not np.array_equal(s0.key, s1.key)
    enc0 = jax.tree_util.tree_leaves(s0.learner.critic.extra)
    enc1 = jax.tree_util.tree_leaves(s1.learner.critic.extra)
    assert any(not np.allclose(a, c) for a, c in zip(enc0, enc1, strict=True))
    # 80 training goals, each with its initial trajectory; then 2 tasks x 2 trajectories.
    assert int(s0.rl_buffers.size.sum()) == 80 * 20
    assert int(s1.rl_buffers.size.sum()) == 80 * 20 + 2 * 2 * 20
    assert int(s1.env_steps) - int(s0.env_steps) == pearl.env_steps_per_update(b, TINY)
    # The collected tasks' encoder buffers hold only this iteration's prior trajectory.
    assert sorted(set(np.asarray(s1.enc_buffers.size).tolist())) == [20]
    assert np.isfinite(float(m["critic_loss"])) and float(m["kl"]) >= 0
    # Sparse point robot: critics learn from the dense reward, the context holds the sparse one.
    data = s1.rl_buffers.data
    assert float(data.train_reward.min()) < -0.5 and float(data.reward.min()) >= 0.0


def trees_differ(a, b) -> bool:
    """True if any leaf of two same-structured pytrees differs."""
    leaves = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return any(not np.array_equal(x, y) for x, y in leaves)


PEARL_TINY_ARGS = [
    "--pearl.latent-dim", "3", "--pearl.encoder-sizes", "16", "--pearl.hidden-sizes", "16",
    "--pearl.initial-trajectories", "1", "--pearl.tasks-per-iteration", "2",
    "--pearl.prior-trajectories", "1", "--pearl.extra-posterior-trajectories", "1",
    "--pearl.updates-per-iteration", "2", "--pearl.meta-batch", "4", "--pearl.batch-size", "8",
    "--pearl.context-batch-size", "8", "--pearl.buffer-capacity", "200",
]  # fmt: skip


def test_cli_train_pearl_end_to_end(tmp_path, capsys):
    from adaptrl.cli import main
    from adaptrl.eval.report import load_results

    run = tmp_path / "run"
    rc = main(["train", "pearl", "--env", "point-nav-sparse", "--iterations", "2",
               "--log-every", "1", "--eval-seeds", "1", "--eval-episodes", "3", "--no-progress",
               "--no-references",
               "--run-dir", str(run), *PEARL_TINY_ARGS])  # fmt: skip
    assert rc == 0
    results = {r.agent: r for r in load_results(run / "results")}
    assert set(results) == {"pearl"}
    r = results["pearl"]
    assert r.returns.shape == (1, 20, 3) and r.has_adaptation_step and not r.privileged
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "kl" in header and "prior_success" in header
    assert "pearl" in capsys.readouterr().out
    rc = main(["train", "pearl", "--env", "bandit-k5-n10", "--run-dir", str(tmp_path / "b")])
    assert rc == 2 and "does not apply" in capsys.readouterr().err
