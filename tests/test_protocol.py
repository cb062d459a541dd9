"""Meta-test protocol: a scripted agent with known returns gives the exact expected curve."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import adaptrl
from adaptrl.envs.grid import GridGoalTask
from adaptrl.eval.protocol import meta_test
from adaptrl.eval.report import load_results, markdown_table, write_results
from adaptrl.eval.stats import mean_ci, seed_task_ci
from adaptrl.rollout.trial import Agent

# Goals on the bottom row are reached by always moving right from (0, 0); (0, 4) never is.
GOALS = GridGoalTask(goal=jnp.array([[3, 0], [4, 0], [0, 4]], jnp.int32))
# 15 steps, +1 on goal else -0.1: goal (3,0): on it only at step 3 -> 1 - 14*0.1 = -0.4;
# goal (4,0): steps 4..15 on it -> 12 - 3*0.1 = 11.7; goal (0,4): -1.5.
RIGHT_RETURNS = np.array([-0.4, 11.7, -1.5])


def always(action):
    return Agent(
        init=lambda key, task: jnp.int32(0),
        act=lambda key, carry, inp: (carry, jnp.int32(action), ()),
        name=f"always-{action}",
    )


def noop_then_right():
    """Explicit adaptation: noop in episode 1, and after the first ``end_episode``, move right."""
    return Agent(
        init=lambda key, task: jnp.bool_(False),
        act=lambda key, adapted, inp: (adapted, jnp.where(adapted, 2, 0).astype(jnp.int32), ()),
        end_episode=lambda key, adapted, episode: jnp.bool_(True),
        name="noop-then-right",
    )


def test_scripted_agent_exact_curve():
    bench = adaptrl.make("grid-varibad")
    res = meta_test(bench, always(2), seeds=(0, 1), tasks=GOALS)
    assert res.returns.shape == (2, 3, 4)
    expected = np.broadcast_to(RIGHT_RETURNS[None, :, None], (2, 3, 4))
    np.testing.assert_allclose(res.returns, expected, atol=1e-5)
    curve = res.curve()
    assert [c.n for c in curve] == [6] * 4
    np.testing.assert_allclose([c.mean for c in curve], [RIGHT_RETURNS.mean()] * 4, atol=1e-5)
    np.testing.assert_array_equal(res.first_success_step[0], [[3] * 4, [4] * 4, [0] * 4])
    np.testing.assert_allclose([c.mean for c in res.success_curve()], [2 / 3] * 4)
    s = res.summary()
    assert math.isclose(s["trial_return"]["mean"], 4 * RIGHT_RETURNS.mean(), abs_tol=1e-4)
    assert "pre_adaptation_return" not in s  # no explicit adaptation step


def test_explicit_adaptation_pre_post():
    bench = adaptrl.make("grid-varibad")
    res = meta_test(bench, noop_then_right(), seeds=(0,), tasks=GOALS, exploration_episodes=1)
    np.testing.assert_allclose(res.returns[0, :, 0], [-1.5] * 3, atol=1e-5)
    np.testing.assert_allclose(res.returns[0, :, 1:], np.repeat(RIGHT_RETURNS[:, None], 3, 1),
                               atol=1e-5)
    s = res.summary()
    assert res.has_adaptation_step
    assert math.isclose(s["pre_adaptation_return"]["mean"], -1.5, abs_tol=1e-4)
    assert math.isclose(s["post_adaptation_return"]["mean"], RIGHT_RETURNS.mean(), abs_tol=1e-4)
    assert math.isclose(s["exploit_return"]["mean"], RIGHT_RETURNS.mean(), abs_tol=1e-4)


def test_outputs_roundtrip(tmp_path):
    bench = adaptrl.make("grid-varibad")
    results = [meta_test(bench, always(2), seeds=(0,), tasks=GOALS),
               meta_test(bench, always(1), seeds=(0,), tasks=GOALS)]
    paths = write_results(results, tmp_path)
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = load_results(tmp_path)
    np.testing.assert_allclose(back[0].returns, results[0].returns)
    rows = paths["csv"].read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 3 * 4
    md = markdown_table(results)
    assert "always-2" in md and "ep 4" in md


def test_protocol_validates_arguments():
    bench = adaptrl.make("grid-varibad")
    with pytest.raises(ValueError, match="one per seed"):
        meta_test(bench, [always(2)], seeds=(0, 1))
    with pytest.raises(ValueError, match="exploration_episodes"):
        meta_test(bench, always(2), exploration_episodes=4)


def test_mean_ci_hand_computed():
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci.mean == 2.0
    assert math.isclose(ci.half_width, 4.303 / math.sqrt(3), rel_tol=1e-6)
    # Several trained agents: the interval is across agents, not across pooled trials.
    v = np.array([[1.0, 1.0], [3.0, 3.0]])
    by_agent = seed_task_ci(v, groups=[0, 1])
    assert by_agent.n == 2 and by_agent.mean == 2.0
    pooled = seed_task_ci(v, groups=[0, 0])
    assert pooled.n == 4
