"""MAML: exact meta-gradients, estimators, baseline, TRPO trust region, agents, CLI."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import enable_x64
from jax.flatten_util import ravel_pytree

import adaptrl
from adaptrl.algos import maml
from adaptrl.cli import main
from adaptrl.envs.point_nav import PointNavigation
from adaptrl.eval.report import result_from_dict, result_to_dict
from adaptrl.rollout.trial import run_trial
from adaptrl.tasks.distribution import tree_index

TINY = maml.MAMLConfig(hidden_sizes=(8,), num_tasks=2, trajectories_per_task=3,
                       eval_trajectories=2, eval_steps=1)  # fmt: skip


def short_point_nav(horizon: int = 6):
    """point-nav with a short horizon (same tasks and split) for cheap exact checks."""
    return dataclasses.replace(adaptrl.make("point-nav"), env=PointNavigation(horizon))


@pytest.fixture(scope="module")
def nav():
    """A collected meta-batch on short point-nav (shared: collection compiles once)."""
    bench = short_point_nav()
    cfg = dataclasses.replace(TINY, inner_lr=0.5)
    state = maml.init(jax.random.PRNGKey(0), bench, cfg, 1)
    update = maml.make_update(bench, cfg, 1)
    data = jax.jit(update.collect)(state, jax.random.PRNGKey(1))
    return bench, cfg, state, data


def _meta_objective(bench, cfg, data, unravel):
    net = maml.make_policy(bench.env, cfg)

    def f(x):
        out = maml.policy_outputs(net, unravel(x), data, cfg)
        return maml.surrogate_from_outputs(out, data, cfg)

    return f


# DiCE is deliberately absent: the magic box makes autodiff return *estimates of the expected*
# objective's derivatives, which differ from derivatives of the sampled value (see the next test).
@pytest.mark.parametrize("objective", ["maml", "promp"])
def test_second_order_meta_gradient_matches_finite_differences(nav, objective):
    bench, cfg, state, data = nav
    cfg = dataclasses.replace(cfg, objective=objective)
    with enable_x64(True):
        flat, unravel = ravel_pytree(jax.tree_util.tree_map(lambda x: x.astype(jnp.float64),
                                                            state.params))  # fmt: skip
        f = _meta_objective(bench, cfg, data, unravel)
        f_fo = _meta_objective(bench, dataclasses.replace(cfg, first_order=True), data, unravel)
        g = np.asarray(jax.jit(jax.grad(f))(flat))
        g_fo = np.asarray(jax.jit(jax.grad(f_fo))(flat))
        eps = 1e-6
        basis = jnp.eye(flat.size, dtype=jnp.float64) * eps
        vf = jax.jit(jax.vmap(f))
        fd = np.asarray((vf(flat + basis) - vf(flat - basis)) / (2 * eps))
        assert np.isclose(float(f(flat)), float(f_fo(flat)))  # same value, other gradient
    scale = np.abs(fd).max()
    np.testing.assert_allclose(g, fd, atol=1e-6 * scale, rtol=1e-5)
    assert np.abs(g_fo - fd).max() > 1e-2 * scale  # first-order misses the second-order term


@pytest.mark.parametrize("linearize_once", [True, False])
def test_fisher_vector_product_is_hessian_of_post_update_kl(nav, linearize_once):
    bench, cfg, state, data = nav
    net = maml.make_policy(bench.env, cfg)
    with enable_x64(True):
        flat, unravel = ravel_pytree(jax.tree_util.tree_map(lambda x: x.astype(jnp.float64),
                                                            state.params))  # fmt: skip
        valid = data.post.episodes.valid

        def outputs(x):
            return maml.policy_outputs(net, unravel(x), data, cfg)

        @jax.jit
        def both(v):
            old = jax.lax.stop_gradient(outputs(flat))

            def task_fn(x, batches):
                return maml.task_outputs(net, unravel(x), *batches, cfg)["post"]

            fvp = maml.kl_hessian_vector_product(task_fn, flat, (data.pre, data.post),
                                                 old["post"], valid,
                                                 linearize_once=linearize_once)  # fmt: skip

            def kl(x):
                return maml.mean_kl(old["post"], outputs(x)["post"], valid)

            return fvp(v), jax.jvp(jax.grad(kl), (flat,), (v,))[1]

        fv, hv = both(jax.random.normal(jax.random.PRNGKey(3), flat.shape, jnp.float64))
        np.testing.assert_allclose(np.asarray(fv), np.asarray(hv), rtol=1e-7, atol=1e-12)


def test_dice_and_lvc_gradients_equal_score_function_gradient_but_hessians_differ(nav):
    bench, _, state, data = nav
    net = maml.make_policy(bench.env, TINY)
    batch = jax.tree_util.tree_map(lambda x: x[0, 0], data.pre)  # task 0, inner step 0
    flat, unravel = ravel_pytree(state.params)

    def loss(objective):
        return lambda x: maml.inner_loss(net, unravel(x), batch, objective, "steps")

    # The score-function estimator written out by hand: -sum_{i,t} log pi(a_t) A_t / #steps
    # (the default loss_averaging="steps").
    def score_function(x):
        ep = batch.episodes
        logp = maml.log_prob(net.apply(unravel(x), ep.observations), ep.actions)
        m = ep.valid.astype(jnp.float32)
        return -(logp * batch.advantages * m).sum() / m.sum()

    g_ref = jax.grad(score_function)(flat)
    v = jax.random.normal(jax.random.PRNGKey(0), flat.shape)
    hvps = {}
    for objective in ("maml", "promp", "dice"):
        np.testing.assert_allclose(jax.grad(loss(objective))(flat), g_ref, rtol=1e-4, atol=1e-6)
        hvps[objective] = np.asarray(jax.jvp(jax.grad(loss(objective)), (flat,), (v,))[1])
    scale = np.abs(hvps["maml"]).max()
    assert np.abs(hvps["dice"] - hvps["maml"]).max() > 1e-2 * scale
    assert np.abs(hvps["promp"] - hvps["maml"]).max() > 1e-2 * scale
    assert np.abs(hvps["dice"] - hvps["promp"]).max() > 1e-3 * scale  # DiCE adds cross-time terms


def test_magic_box_value_and_derivatives():
    f = lambda x: maml.magic_box(3.0 * x)  # noqa: E731
    assert float(f(0.7)) == 1.0
    assert np.isclose(float(jax.grad(f)(0.7)), 3.0)
    assert np.isclose(float(jax.grad(jax.grad(f))(0.7)), 9.0)


@pytest.mark.parametrize("wrap", [pytest.param(lambda f: f, id="eager"),
                                  pytest.param(jax.jit, id="jit")])  # fmt: skip
def test_linear_baseline_features_and_fit_by_hand(wrap):
    features = wrap(maml.baseline_features)
    obs = jnp.array([[[1.0, 2.0], [3.0, -1.0], [0.0, 0.0]]])  # (N=1, T=3, D=2)
    valid = jnp.array([[True, True, False]])
    f = np.asarray(features(obs, valid))
    np.testing.assert_allclose(f[0, 0], [1, 2, 1, 4, 0, 0, 0, 1])
    np.testing.assert_allclose(f[0, 1], [3, -1, 9, 1, 0.01, 1e-4, 1e-6, 1], rtol=1e-6)
    np.testing.assert_array_equal(f[0, 2], 0)  # padding
    # Targets that are exactly linear in the features are recovered (tiny ridge).
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    obs = jax.random.normal(k1, (4, 50, 2))
    valid = jnp.ones((4, 50), bool).at[1, 30:].set(False)
    feats = features(obs, valid)
    w_true = jax.random.normal(k2, (8,))
    y = feats @ w_true
    w = wrap(lambda f, y: maml.fit_linear_baseline(f, y, reg=1e-8))(feats, y)
    np.testing.assert_allclose(np.asarray(feats @ w), np.asarray(y), atol=2e-3)


@pytest.mark.parametrize("wrap", [pytest.param(lambda f: f, id="eager"),
                                  pytest.param(jax.jit, id="jit")])  # fmt: skip
def test_returns_and_gae_by_hand(wrap):
    r = jnp.array([1.0, 1.0, 1.0, 5.0])
    valid = jnp.array([True, True, True, False])
    returns = wrap(lambda r, valid: maml.discounted_returns(r, valid, 0.5))(r, valid)
    np.testing.assert_allclose(returns, [1.75, 1.5, 1.0, 0.0])
    v = jnp.array([0.5, 0.25, 0.0, 9.0])
    # lambda = 1: advantage = return - value; the padded step's value is never bootstrapped.
    adv = wrap(lambda r, v, valid: maml.gae_advantages(r, v, valid, 0.5, 1.0))(r, v, valid)
    np.testing.assert_allclose(adv, [1.25, 1.25, 1.0, 0.0], atol=1e-6)
    # lambda = 0: one-step TD errors.
    adv0 = wrap(lambda r, v, valid: maml.gae_advantages(r, v, valid, 0.5, 0.0))(r, v, valid)
    np.testing.assert_allclose(adv0, [1 + 0.125 - 0.5, 1 + 0 - 0.25, 1.0, 0.0], atol=1e-6)


@pytest.fixture(scope="module")
def point_nav_update():
    bench = short_point_nav(10)
    cfg = dataclasses.replace(TINY, num_tasks=3, trajectories_per_task=4)
    state = maml.init(jax.random.PRNGKey(0), bench, cfg, 5)
    update = maml.make_update(bench, cfg, 5)
    return bench, cfg, state, update, jax.jit(update)


def test_update_runs_and_respects_trust_region(point_nav_update):
    bench, cfg, state, update, jitted = point_nav_update
    new_state, metrics = jitted(state)
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert int(new_state.iteration) == 1
    assert float(metrics["step_accepted"]) == 1.0
    assert float(metrics["surrogate_after"]) < float(metrics["surrogate_before"])
    # Recompute the KL between old and new post-update policies on the batch the update used.
    _, k_collect = jax.random.split(state.key)

    @jax.jit
    def recompute_kl(old_params, new_params):
        data = update.collect(state, k_collect)
        old = update.outputs(old_params, data)["post"]
        new = update.outputs(new_params, data)["post"]
        return maml.mean_kl(old, new, data.post.episodes.valid)

    kl = float(recompute_kl(state.params, new_state.params))
    assert 0.0 < kl <= cfg.max_kl
    np.testing.assert_allclose(kl, float(metrics["kl"]), rtol=1e-3)


def test_update_is_deterministic_per_key(point_nav_update):
    _, _, state, _, jitted = point_nav_update
    s1, m1 = jitted(state)
    s2, m2 = jitted(state)
    for a, b in zip(jax.tree_util.tree_leaves((s1, m1)), jax.tree_util.tree_leaves((s2, m2)),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    s3, _ = jitted(state.replace(key=jax.random.PRNGKey(42)))
    assert not np.allclose(ravel_pytree(s1.params)[0], ravel_pytree(s3.params)[0])


def test_update_runs_on_a_discrete_family_with_promp_ppo_and_learned_baseline():
    bench = adaptrl.make("grid-varibad")  # Discrete actions, one-hot observations
    cfg = dataclasses.replace(TINY, objective="promp", outer="ppo", baseline="mlp",
                              value_sizes=(8,), value_epochs=2, ppo_epochs=2)  # fmt: skip
    state = maml.init(jax.random.PRNGKey(0), bench, cfg, 2)
    new_state, metrics = jax.jit(maml.make_update(bench, cfg, 2))(state)
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert {"pre_update_kl", "kl_coef", "value_loss"} <= set(metrics)
    assert not np.allclose(ravel_pytree(state.params)[0], ravel_pytree(new_state.params)[0])


def test_trial_agent_takes_one_gradient_step_per_episode(nav):
    bench, _, state, _ = nav
    cfg = dataclasses.replace(TINY, normalize_actions=True)
    agent = maml.agent_from_state(state, bench, cfg)
    task = bench.test_tasks.replace(goal=bench.test_tasks.goal[0])

    @jax.jit
    def run():
        trial = run_trial(bench.env, agent, task, jax.random.PRNGKey(0), 2)
        ep = jax.tree_util.tree_map(lambda x: x[0], trial.transitions)
        carry = agent.end_episode(jax.random.PRNGKey(1), agent.init(jax.random.PRNGKey(2), task),
                                  ep)  # fmt: skip
        # Expected: one inner step on that episode as a batch of one.
        # The policy acts in [-1, 1] units; the environment saw them mapped onto [-0.1, 0.1].
        center, half_range = maml.action_map(bench.env, cfg)
        policy_actions = (ep.action - center) / half_range
        episodes = maml.Episodes(ep.agent_input.observation[None], policy_actions[None],
                                 ep.reward[None], ep.valid[None], ep.success[None],
                                 ep.extras[None])  # fmt: skip
        batch = maml.make_task_batch(episodes, cfg)
        net = maml.make_policy(bench.env, cfg)
        return carry, maml.inner_step(net, state.params, batch, cfg.inner_lr, "maml", True)

    carry, expected = run()
    assert int(carry.steps) == 1
    np.testing.assert_allclose(ravel_pytree(carry.params)[0], ravel_pytree(expected)[0],
                               rtol=1e-5, atol=1e-7)  # fmt: skip
    assert not np.allclose(ravel_pytree(carry.params)[0], ravel_pytree(state.params)[0])


def test_config_validation():
    with pytest.raises(ValueError, match="outer"):
        maml.MAMLConfig(outer="sgd").validate()
    with pytest.raises(ValueError, match="num_inner_steps"):
        maml.MAMLConfig(num_inner_steps=0).validate()


def test_cli_train_and_eval(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = ["--maml.hidden-sizes", "8", "--maml.num-tasks", "2", "--maml.trajectories-per-task",
            "2", "--maml.eval-trajectories", "2", "--maml.eval-steps", "2"]  # fmt: skip
    rc = main(["train", "maml", "--env", "point-nav", "--iterations", "2", "--log-every", "1",
               "--eval-seeds", "1", "--no-references", "--no-progress", "--run-dir", str(run),
               *tiny])  # fmt: skip
    assert rc == 0
    (res,) = json.loads((run / "results" / "meta_test.json").read_text())["results"]
    assert res["agent"] == "maml" and res["has_adaptation_step"]
    assert np.asarray(res["returns"]).shape == (1, 40, 3)  # 40 held-out tasks, 0..2 steps
    assert "post_update_return" in (run / "metrics.csv").read_text()
    assert main(["eval", str(run), "--out", str(tmp_path / "ev")]) == 0
    assert (tmp_path / "ev" / "meta_test.md").exists()
    # Changed meta-test settings go to their own directory; the run's results stay as written.
    before = (run / "results" / "meta_test.json").read_text()
    changed = ["--set", "eval_steps=1", "--set", "eval-loss-averaging=steps"]
    assert main(["eval", str(run), *changed]) == 0
    (alt,) = json.loads((run / "results-eval_steps-1-eval_loss_averaging-steps" / "meta_test.json")
                        .read_text())["results"]  # fmt: skip
    assert np.asarray(alt["returns"]).shape == (1, 40, 2)
    assert (run / "results" / "meta_test.json").read_text() == before
    # Several fields after one --set, as the benchmark scripts take them.
    capsys.readouterr()
    assert main(["eval", "--set", "eval_steps=1", "eval_samples=300", "eval_episode_cap=8",
                 str(run)]) == 0  # fmt: skip
    assert "eval_samples=300: episodes per step" in capsys.readouterr().out
    (bud,) = json.loads((run / "results-eval_steps-1-eval_samples-300-eval_episode_cap-8" /
                         "meta_test.json").read_text())["results"]  # fmt: skip
    assert np.asarray(bud["returns"]).shape == (1, 40, 2)
    assert main(["eval", str(run), "--set", "no_such_field=1"]) == 2
    assert main(["eval", str(run), "--set", "eval_steps=two"]) == 2
    assert "cannot read 'two' as int" in capsys.readouterr().err


def test_loss_averaging_by_hand():
    """"steps": one mean over every valid step; "episodes": per-episode means, then their mean
    (a 1-step episode then weighs as much as a 3-step one)."""
    x = jnp.array([[1.0, 2.0, 3.0], [10.0, 0.0, 0.0]])
    valid = jnp.array([[True, True, True], [True, False, False]])
    assert float(maml._traj_mean(x, valid, "steps")) == pytest.approx(16.0 / 4)
    assert float(maml._traj_mean(x, valid, "episodes")) == pytest.approx((2.0 + 10.0) / 2)
    assert maml.MAMLConfig().loss_averaging == "episodes"
    with pytest.raises(ValueError, match="loss_averaging"):
        maml.MAMLConfig(loss_averaging="tasks").validate()


def test_meta_test_loss_averaging_is_separate_from_training():
    """``eval_loss_averaging`` changes only the meta-test steps: "train" follows
    ``loss_averaging``; an explicit value overrides it. Episodes end early here (a goal
    tolerance of 0.15 around goals near the start), so the two averagings really differ."""
    base = short_point_nav(horizon=8)
    env = dataclasses.replace(base.env, goal_tolerance=0.15)
    bench = dataclasses.replace(base, env=env)
    cfg = dataclasses.replace(TINY, eval_trajectories=6, eval_steps=1, inner_lr=0.5)
    state = maml.init(jax.random.PRNGKey(0), bench, cfg, 1)
    task = bench.test_tasks.replace(goal=jnp.array([0.1, 0.05]))

    def after_one_step(**kw):
        run = maml.adaptation_returns(env, dataclasses.replace(cfg, **kw), 1)
        ret, _, length, *_ = jax.jit(run)(state.params, state.value_params, task,
                                         jax.random.PRNGKey(3))  # fmt: skip
        return np.asarray(ret), np.asarray(length)

    eval_steps, lengths = after_one_step(loss_averaging="episodes", eval_loss_averaging="steps")
    assert lengths[0] < 8  # some pre-update episodes ended early
    np.testing.assert_array_equal(eval_steps, after_one_step(loss_averaging="steps")[0])
    eval_eps = after_one_step(loss_averaging="steps", eval_loss_averaging="episodes")[0]
    np.testing.assert_array_equal(eval_eps, after_one_step(loss_averaging="episodes")[0])
    assert eval_steps[0] == eval_eps[0]  # same pre-update episodes
    assert eval_steps[1] != eval_eps[1]  # different adapted policies
    with pytest.raises(ValueError, match="eval_loss_averaging"):
        maml.MAMLConfig(eval_loss_averaging="tasks").validate()


@pytest.mark.parametrize("wrap", [pytest.param(lambda f: f, id="eager"),
                                  pytest.param(jax.jit, id="jit")])  # fmt: skip
def test_within_budget_keeps_whole_episodes_up_to_the_sample_budget(wrap):
    valid = jnp.arange(6)[None, :] < jnp.array([3, 5, 2, 4])[:, None]  # lengths 3, 5, 2, 4
    ep = maml.Episodes(*(jnp.zeros((4, 6)),) * 3, valid, valid, jnp.zeros((4, 6)))

    def keep(budget, streams=1):
        k, filled = wrap(lambda e: maml.within_budget(e, budget, streams))(ep)
        return np.asarray(k).tolist(), bool(filled)

    # One stream: 0, 3, 8, 10 steps were collected before each episode; the one crossing the
    # budget is kept (rllab's serial sampler).
    assert keep(8) == ([True, True, False, False], True)
    assert keep(9) == ([True, True, True, False], True)
    assert keep(1) == ([True, False, False, False], True)
    assert keep(15)[1] is False  # 14 steps in all: the buffer cannot fill the budget
    # Two streams in lockstep, [3, 5] and [2, 4]: episodes end at t = 3, 8 and 2, 6. By t = 6
    # the completed ones hold 2 + 3 + 4 = 9 >= 8 steps; the 5-step episode (ends at 8) is
    # still running and dropped (rllab's VectorizedSampler).
    assert keep(8, streams=2) == ([True, False, True, True], True)
    assert keep(5, streams=2) == ([True, False, True, False], True)  # t = 3: 2 + 3 steps
    # 10 steps: stop at t = 8 (all four, 14 steps), but stream 2 ran out at t = 6 and would
    # have completed more by then, so the buffer was too small.
    assert keep(10, streams=2) == ([True, True, True, True], False)


def test_meta_test_sample_budget_uses_more_episodes_when_they_end_early():
    """``eval_samples``: whole episodes until the step budget; early termination -> more
    episodes; a cap below the budget is reported (and warned about by evaluate_adaptation)."""
    base = short_point_nav(horizon=8)
    cfg = dataclasses.replace(TINY, eval_steps=1, eval_samples=20, eval_episode_cap=12)
    state = maml.init(jax.random.PRNGKey(0), base, cfg, 1)
    task = tree_index(base.test_tasks, 0)

    def stats(env, **kw):
        run = maml.adaptation_returns(env, dataclasses.replace(cfg, **kw), 1)
        out = jax.jit(run)(state.params, state.value_params, task, jax.random.PRNGKey(3))
        return [np.asarray(x) for x in out]

    never = dataclasses.replace(base.env, goal_tolerance=None)  # every episode lasts 8 steps
    ret, _, length, _, used, capped = stats(never)
    np.testing.assert_array_equal(used, [3, 3])  # 0, 8, 16 < 20 steps before them
    np.testing.assert_array_equal(length, [8, 8])
    assert not capped.any() and np.isfinite(ret).all()
    early = dataclasses.replace(base.env, goal_tolerance=2.0)  # ends at once: 1-step episodes
    _, _, length, _, used, capped = stats(early)
    np.testing.assert_array_equal(length, [1, 1])
    np.testing.assert_array_equal(used, [12, 12])  # the cap: 12 steps < the budget of 20
    assert capped.all()
    _, _, _, _, used, capped = stats(early, eval_episode_cap=30)
    np.testing.assert_array_equal(used, [20, 20])
    assert not capped.any()
    bench = dataclasses.replace(base, env=early)
    with pytest.warns(UserWarning, match="eval_episode_cap"):
        res = maml.evaluate_adaptation(bench, state, cfg, seeds=[0, 1],
                                       tasks=tree_index(bench.test_tasks, jnp.arange(2)))
    # The budget's statistics are kept with the result and survive meta_test.json.
    assert res.episodes_used.shape == res.budget_capped.shape == res.returns.shape == (2, 2, 2)
    assert (res.episodes_used == 12).all() and res.budget_capped.all()
    back = result_from_dict(json.loads(json.dumps(result_to_dict(res))))
    np.testing.assert_array_equal(back.episodes_used, res.episodes_used)
    np.testing.assert_array_equal(back.budget_capped, res.budget_capped)
    plain = maml.evaluate_adaptation(bench, state, dataclasses.replace(cfg, eval_samples=0),
                                     tasks=tree_index(bench.test_tasks, jnp.arange(2)))
    assert plain.episodes_used is None and "episodes_used" not in result_to_dict(plain)
    with pytest.raises(ValueError, match="eval_samples"):
        maml.MAMLConfig(eval_samples=-1).validate()
    with pytest.raises(ValueError, match="eval_samples"):
        maml.MAMLConfig(eval_samples=100, eval_protocol="trial").validate()
    with pytest.raises(ValueError, match="multiple of eval_parallel_envs"):
        maml.MAMLConfig(eval_samples=100, eval_episode_cap=30, eval_parallel_envs=4).validate()


def test_sample_budget_equals_fixed_episodes_when_none_end_early():
    """Without early termination a budget of 3 full episodes is exactly 3 episodes per step:
    the masked rows of the larger buffer change neither the returns nor the gradient step."""
    base = short_point_nav(horizon=8)
    env = dataclasses.replace(base.env, goal_tolerance=None)
    cfg = dataclasses.replace(TINY, eval_steps=2, inner_lr=0.5, later_inner_lr=0.3)
    state = maml.init(jax.random.PRNGKey(0), base, cfg, 1)
    task = tree_index(base.test_tasks, 1)
    key = jax.random.PRNGKey(5)
    assert np.array_equal(jax.random.split(key, 12)[:3], jax.random.split(key, 3))

    def returns(c):
        run = maml.adaptation_returns(env, c, 2)
        return np.asarray(jax.jit(run)(state.params, state.value_params, task, key)[0])

    fixed = returns(dataclasses.replace(cfg, eval_trajectories=3))
    budget = returns(dataclasses.replace(cfg, eval_samples=24, eval_episode_cap=12))
    np.testing.assert_allclose(budget, fixed, rtol=1e-5, atol=1e-5)
    assert not np.allclose(fixed[1:], fixed[0])  # the steps did change the policy


def test_episode_averaging_ignores_empty_rows():
    x = jnp.array([[1.0, 2.0, 3.0], [10.0, 0.0, 0.0], [7.0, 7.0, 7.0]])
    valid = jnp.array([[True, True, True], [True, False, False], [False, False, False]])
    assert float(maml._traj_mean(x, valid, "episodes")) == pytest.approx(6.0)  # (2 + 10) / 2
    assert float(maml._traj_mean(x, valid, "steps")) == pytest.approx(4.0)  # 16 / 4


def test_adaptation_returns_same_eagerly_and_under_jit():
    """The meta-test's per-task adaptation runs unjitted too (e.g. under a debugger), with the
    same numbers (returns, success, lengths, ... after 0, 1 and 2 steps)."""
    bench = short_point_nav(horizon=5)
    cfg = dataclasses.replace(TINY, eval_trajectories=4, inner_lr=0.5)
    state = maml.init(jax.random.PRNGKey(0), bench, cfg, 1)
    task = tree_index(bench.test_tasks, 0)
    run = maml.adaptation_returns(bench.env, cfg, 2)
    args = (state.params, state.value_params, task, jax.random.PRNGKey(4))
    eager, jitted = run(*args), jax.jit(run)(*args)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    returns = np.asarray(eager[0])
    assert returns.shape == (3,) and np.all(np.isfinite(returns))
