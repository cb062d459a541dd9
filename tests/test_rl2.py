"""RL² plumbing: memory carries across episodes, resets between trials; replay matches rollout."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import adaptrl
from adaptrl.algos import rl2
from adaptrl.eval.protocol import meta_test
from adaptrl.rollout.trial import Agent, run_trial

CFG = rl2.RL2Config(hidden_size=16, embed_sizes=(16,), num_trials=8, num_minibatches=2)


def _exposing_carry(agent: Agent) -> Agent:
    """Same agent; ``extras`` = the carry it had *before* the step."""

    def act(key, carry, inp):
        new_carry, action, _ = agent.act(key, carry, inp)
        return new_carry, action, carry

    return agent._replace(act=act)


def test_memory_persists_across_episodes_and_resets_between_trials():
    bench = adaptrl.make("grid-varibad")
    state = rl2.init(jax.random.PRNGKey(0), bench, CFG, 10)
    agent = _exposing_carry(rl2.make_agent(state.params, bench.env, CFG))
    task = bench.sample_train_task(jax.random.PRNGKey(1))
    trial = jax.jit(lambda k: run_trial(bench.env, agent, task, k, 3))(jax.random.PRNGKey(2))
    carry = np.asarray(trial.transitions.extras)  # (episodes, steps, hidden)
    assert np.all(carry[0, 0] == 0)  # a trial starts with empty memory
    for e in (1, 2):  # ... and keeps it across episode boundaries
        assert np.abs(carry[e, 0]).max() > 1e-3
    # The first carry of episode e is the carry after the last step of episode e-1: re-run that
    # step to check nothing reset it in between.
    net = rl2.make_network(bench.env, CFG)
    last_input = jax.tree_util.tree_map(lambda x: x[0, -1], trial.transitions.agent_input)
    after, _, _ = net.apply(state.params, jnp.asarray(carry[0, -1]),
                            rl2.step_features(bench.env, last_input))  # fmt: skip
    np.testing.assert_allclose(after, carry[1, 0], atol=1e-6)
    # A second trial starts from zeros again.
    trial2 = run_trial(bench.env, agent, task, jax.random.PRNGKey(3), 2)
    assert np.all(np.asarray(trial2.transitions.extras)[0, 0] == 0)


def test_no_memory_ablation_wipes_state_every_step():
    bench = adaptrl.make("bandit-k2-n10")
    cfg = rl2.RL2Config(**{**CFG.__dict__, "memory": False})
    state = rl2.init(jax.random.PRNGKey(0), bench, cfg, 10)
    net = rl2.make_network(bench.env, cfg)
    x = jnp.ones(net_input_size(bench)) * 0.3
    _, h1, v1 = net.apply(state.params, jnp.zeros(16), x)
    _, h2, v2 = net.apply(state.params, jnp.ones(16) * 5.0, x)
    np.testing.assert_allclose(h1, h2)
    np.testing.assert_allclose(v1, v2)


def net_input_size(bench):
    return 1 + bench.env.action_space.n + 2


def test_replay_reproduces_rollout_values_with_padding():
    # grid-nav2d terminates on the goal, so trials contain padding steps.
    bench = adaptrl.make("grid-nav2d")
    state = rl2.init(jax.random.PRNGKey(0), bench, CFG, 10)
    agent = rl2.make_agent(state.params, bench.env, CFG)
    task = bench.sample_train_task(jax.random.PRNGKey(1))
    trial = run_trial(bench.env, agent, task, jax.random.PRNGKey(2), 3)
    flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), trial.transitions)
    feats = jax.vmap(lambda i: rl2.step_features(bench.env, i))(flat.agent_input)
    net = rl2.make_network(bench.env, CFG)
    _, values = rl2._replay(net, state.params, feats, flat.valid)
    valid = np.asarray(flat.valid)
    np.testing.assert_allclose(np.asarray(values)[valid], np.asarray(flat.extras[1])[valid],
                               atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("wrap", [pytest.param(lambda f: f, id="eager"),
                                  pytest.param(jax.jit, id="jit")])  # fmt: skip
def test_trial_gae_skips_padding_and_crosses_episodes(wrap):
    r = jnp.array([1.0, 0.0, 0.0, 2.0])
    v = jnp.array([0.5, 9.0, 0.25, 1.0])
    valid = jnp.array([True, False, True, True])  # step 1 is padding
    adv, ret = wrap(lambda r, v, valid: rl2.trial_gae(r, v, valid, gamma=0.9, lam=1.0))(r, v,
                                                                                         valid)
    # lam = 1: return targets are discounted sums over valid steps, bootstrapping across padding.
    np.testing.assert_allclose(ret, [1 + 0.9 * 0 + 0.81 * 2, 0.0, 0 + 0.9 * 2, 2.0], atol=1e-6)
    np.testing.assert_allclose(adv, np.asarray(ret) - np.where(valid, v, 0.0), atol=1e-6)


def _train_and_meta_test(bench, config, iterations, seed=0):
    state = rl2.init(jax.random.PRNGKey(seed), bench, config, iterations)
    update = jax.jit(rl2.make_update(bench, config, iterations))
    for _ in range(iterations):
        state, _ = update(state)
    agent = rl2.make_agent(state.params, bench.env, config)
    return float(meta_test(bench, [agent], seeds=[seed]).trial_returns.mean())


def test_learns_two_armed_bandit_beating_random_and_no_memory_ablation():
    """On 2 arms paying 0.5 +- d, RL² must count outcomes; a memoryless policy cannot.

    Random scores 10 per 20-pull trial and the best memoryless rule (win-stay / lose-shift)
    about 11.7 in expectation; RL² reaches ~12.3 after 80 short updates. 500 held-out tasks give
    a standard error of ~0.1 on each mean.
    """
    bench = adaptrl.make("bandit-k2-mirror-n20", num_test_tasks=500)
    config = rl2.RL2Config(hidden_size=32, embed_sizes=(32,), num_trials=128, num_minibatches=8,
                           ppo_epochs=2, gae_lambda=0.3, entropy_coef=0.003,
                           learning_rate=3e-3)  # fmt: skip
    with_memory = _train_and_meta_test(bench, config, 80)
    no_memory = _train_and_meta_test(bench, dataclasses.replace(config, memory=False), 80)
    random_score = 10.0  # both arms average 0.5
    assert with_memory > random_score + 1.5, (with_memory, no_memory)
    assert with_memory > no_memory + 1.0, (with_memory, no_memory)


def test_update_is_deterministic_for_a_seed():
    bench = adaptrl.make("bandit-k5-n10")
    update = jax.jit(rl2.make_update(bench, CFG, 2))
    runs = []
    for _ in range(2):
        state = rl2.init(jax.random.PRNGKey(7), bench, CFG, 2)
        state, _ = update(update(state)[0])
        runs.append(jax.tree_util.tree_leaves(state.params))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_separate_value_core_has_its_own_memory_and_leaves_the_policy_alone():
    bench = adaptrl.make("grid-nav2d")
    cfg = dataclasses.replace(CFG, separate_value=True)
    state = rl2.init(jax.random.PRNGKey(0), bench, cfg, 10)
    net = rl2.make_network(bench.env, cfg)
    assert {"value_embed", "value_memory"} <= set(state.params["params"])
    # Replay over a trial with padding reproduces the rollout's values (two carries).
    agent = rl2.make_agent(state.params, bench.env, cfg)
    task = bench.sample_train_task(jax.random.PRNGKey(1))
    trial = run_trial(bench.env, agent, task, jax.random.PRNGKey(2), 3)
    flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), trial.transitions)
    feats = jax.vmap(lambda i: rl2.step_features(bench.env, i))(flat.agent_input)
    heads, values = rl2._replay(net, state.params, feats, flat.valid)
    valid = np.asarray(flat.valid)
    np.testing.assert_allclose(np.asarray(values)[valid], np.asarray(flat.extras[1])[valid],
                               atol=1e-5)  # fmt: skip

    # The value's parameters do not move the policy's output, and vice versa.
    def head_sum(p):
        return rl2._replay(net, p, feats, flat.valid)[0].sum()

    def value_sum(p):
        return rl2._replay(net, p, feats, flat.valid)[1].sum()

    g_head = jax.grad(head_sum)(state.params)["params"]
    g_value = jax.grad(value_sum)(state.params)["params"]
    for name in ("value_embed", "value_memory", "value_head"):
        assert all(np.all(np.asarray(x) == 0) for x in jax.tree_util.tree_leaves(g_head[name]))
    for name in ("embed", "memory", "policy_head"):
        assert all(np.all(np.asarray(x) == 0) for x in jax.tree_util.tree_leaves(g_value[name]))
    assert np.abs(np.asarray(jax.tree_util.tree_leaves(g_value["value_memory"])[0])).max() > 0


def test_target_kl_stops_the_remaining_epochs():
    bench = adaptrl.make("bandit-k5-n10")
    base = dataclasses.replace(CFG, ppo_epochs=4, learning_rate=0.05)
    state = rl2.init(jax.random.PRNGKey(7), bench, base, 2)
    _, every = jax.jit(rl2.make_update(bench, base, 2))(state)
    assert float(every["epochs_run"]) == 4
    # A tiny target stops after the first epoch; its parameters equal a 1-epoch update's.
    stopped_state, stopped = jax.jit(
        rl2.make_update(bench, dataclasses.replace(base, target_kl=1e-12), 2))(state)
    assert float(stopped["epochs_run"]) == 1

    # The annealing schedule still counts the skipped minibatches (it ends at the run's end).
    def schedule_counts(opt_state):
        is_sched = lambda s: isinstance(s, optax.ScaleByScheduleState)  # noqa: E731
        found = [s for s in jax.tree_util.tree_leaves(opt_state, is_leaf=is_sched)
                 if is_sched(s)]  # fmt: skip
        return [int(s.count) for s in found]

    assert schedule_counts(stopped_state.opt_state) == [4 * base.num_minibatches]
    # anneal_lr off so that the 1-epoch run's learning rate is the same at every step.
    one = dataclasses.replace(base, ppo_epochs=1, anneal_lr=False)
    stop1 = dataclasses.replace(base, target_kl=1e-12, anneal_lr=False)
    s_one = rl2.init(jax.random.PRNGKey(7), bench, one, 2)
    s_stop = rl2.init(jax.random.PRNGKey(7), bench, stop1, 2)
    a = jax.jit(rl2.make_update(bench, one, 2))(s_one)[0]
    b = jax.jit(rl2.make_update(bench, stop1, 2))(s_stop)[0]
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_meta_test_of_a_sampling_agent_is_deterministic_per_seed():
    """Same seeds, same numbers (bit for bit) for an agent that samples its actions; other seeds
    give other trials."""
    bench = adaptrl.make("bandit-k2-n10", num_test_tasks=20)
    state = rl2.init(jax.random.PRNGKey(0), bench, CFG, 1)
    agent = rl2.make_agent(state.params, bench.env, CFG)
    a = meta_test(bench, agent, seeds=[0, 1]).returns
    b = meta_test(bench, agent, seeds=[0, 1]).returns
    c = meta_test(bench, agent, seeds=[2, 3]).returns
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
