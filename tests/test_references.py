"""Oracle and task-agnostic references, and the reference entries of the algorithm registry."""

import jax.numpy as jnp
import numpy as np
import pytest

import adaptrl
from adaptrl.algos import UnknownAlgorithmError, get_algorithm, list_algorithms
from adaptrl.baselines.oracle import oracle, task_agnostic
from adaptrl.envs.grid import GridGoalTask
from adaptrl.eval.protocol import meta_test


def test_grid_oracle_hand_computed():
    bench = adaptrl.make("grid-varibad")
    # Goal (2, 2) is 4 moves away: 3 steps at -0.1, then on the goal for steps 4..15.
    tasks = GridGoalTask(goal=jnp.array([[2, 2], [4, 4]], jnp.int32))
    res = meta_test(bench, oracle(bench), tasks=tasks)
    np.testing.assert_allclose(res.returns[0, 0], [12 - 0.3] * 4, atol=1e-5)
    np.testing.assert_allclose(res.returns[0, 1], [8 - 0.7] * 4, atol=1e-5)
    assert res.privileged


@pytest.mark.parametrize("name", ["grid-nav2d", "sign-grid", "point-nav-sparse"])
def test_oracle_always_succeeds(name):
    bench = adaptrl.make(name)
    res = meta_test(bench, oracle(bench), seeds=(0,))
    assert res.success.all()


def test_sign_blind_agent_succeeds_only_on_its_goal():
    bench = adaptrl.make("sign-grid")
    res = meta_test(bench, task_agnostic(bench), tasks=bench.split.train_tasks)
    success = res.success[0, :, 0]
    goal_index = np.asarray(bench.split.train_tasks.goal_index)
    # It always walks to one fixed corner: success exactly on the tasks whose goal is that corner.
    assert success.any() and not success.all()
    assert len(set(goal_index[success])) == 1


def test_point_nav_references_bracket_the_task():
    bench = adaptrl.make("point-nav")
    up = meta_test(bench, oracle(bench)).summary()["first_episode_return"]["mean"]
    low = meta_test(bench, task_agnostic(bench)).summary()["first_episode_return"]["mean"]
    rnd = meta_test(bench, get_algorithm("random").make_agent(None, bench, None))
    rnd = rnd.summary()["first_episode_return"]["mean"]
    assert up > -5.0  # a straight line at full speed reaches any goal in <= 5 steps
    assert low < up - 10 and rnd < up - 10


def test_mdp_oracle_beats_psrl_beats_random():
    bench = adaptrl.make("tabular-mdp-n10", num_test_tasks=100)
    score = {}
    for name in ("oracle", "psrl", "random"):
        spec = get_algorithm(name)
        agent = spec.make_agent(None, bench, spec.config_cls())
        score[name] = meta_test(bench, agent).summary()["trial_return"]["mean"]
    assert score["oracle"] > score["psrl"] + 5 > score["random"] + 10


def test_registry_lists_and_rejects():
    assert {"rl2", "random", "oracle", "thompson", "ucb1", "gittins", "psrl"} <= set(
        list_algorithms()
    )
    with pytest.raises(UnknownAlgorithmError, match="thompson"):
        get_algorithm("thomson")
    with pytest.raises(ValueError, match="does not apply"):
        get_algorithm("psrl").check_supports(adaptrl.make("bandit-k5-n10"))
