"""Task distributions, disjoint meta-train / meta-test splits, and the registry."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import adaptrl
from adaptrl.envs.grid import GridGoalTask
from adaptrl.tasks.distribution import ContinuousTasks, FiniteTasks, split_tasks, tree_size

FINITE = {  # name: (number of tasks, number of held-out tasks)
    "point-nav-sparse": (100, 20),  # PEARL: 80 train / 20 test
    "grid-varibad": (21, 5),
    "grid-nav2d": (31, 8),
    "sign-grid": (28, 8),  # 4 of 14 sign cells held out, both goals each (grouped split)
}
CONTINUOUS = {  # name: default number of held-out tasks
    "bandit-k5-n10": 1000,
    "tabular-mdp-n10": 1000,
    "point-nav": 40,
    "point-nav-dense": 100,
}


@functools.cache
def make(name: str, split_seed: int = 0):
    return adaptrl.make(name, split_seed=split_seed)


def rows(tasks) -> list[bytes]:
    """One bytes key per task of a batched task pytree (for exact set comparisons)."""
    n = tree_size(tasks)
    leaves = [np.asarray(x).reshape(n, -1).view(np.uint8) for x in jax.tree.leaves(tasks)]
    return [row.tobytes() for row in np.concatenate(leaves, axis=1)]


def sample_train(benchmark, seed: int, n: int):
    return jax.vmap(benchmark.sample_train_task)(jax.random.split(jax.random.PRNGKey(seed), n))


# ---------------------------------------------------------------------------------------------
# Finite task sets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FINITE))
def test_finite_split_is_disjoint_and_covering(name):
    num_tasks, num_test = FINITE[name]
    b = make(name)
    assert b.distribution.is_finite and b.distribution.num_tasks == num_tasks
    assert b.num_test_tasks == num_test
    assert b.split.num_train_tasks == num_tasks - num_test
    train, test, everything = (
        rows(b.split.train_tasks),
        rows(b.test_tasks),
        rows(b.distribution.tasks),
    )
    assert len(set(everything)) == num_tasks  # the enumerated tasks are distinct
    assert len(set(train)) == len(train) and len(set(test)) == len(test)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(everything)


@pytest.mark.parametrize("name", sorted(FINITE))
def test_finite_split_depends_only_on_the_seed(name):
    same = adaptrl.make(name, split_seed=0)
    assert rows(same.test_tasks) == rows(make(name).test_tasks)
    assert rows(same.split.train_tasks) == rows(make(name).split.train_tasks)
    test_sets = {frozenset(rows(make(name, seed).test_tasks)) for seed in range(3)}
    assert len(test_sets) > 1


@pytest.mark.parametrize("name", sorted(FINITE))
def test_finite_train_sampler_returns_only_training_tasks(name):
    b = make(name)
    draws = rows(sample_train(b, 0, 2000))
    train = set(rows(b.split.train_tasks))
    assert set(draws) <= train
    assert set(draws) == train  # 2000 draws reach every training task
    counts = np.unique(np.asarray(draws, dtype=object), return_counts=True)[1]
    assert counts.min() > 0.35 * 2000 / len(train)  # roughly uniform
    # Jittable, and deterministic per key.
    k = jax.random.PRNGKey(7)
    assert rows(jax.tree.map(lambda x: x[None], jax.jit(b.sample_train_task)(k))) == rows(
        jax.tree.map(lambda x: x[None], b.sample_train_task(k))
    )


def test_sparse_point_split_is_80_20_on_the_half_circle():
    b = make("point-nav-sparse")
    for tasks, n in ((b.split.train_tasks, 80), (b.test_tasks, 20)):
        goals = np.asarray(tasks.goal)
        assert goals.shape == (n, 2)
        np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 1.0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Continuous distributions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_continuous_test_set_size(name):
    b = make(name)
    assert not b.distribution.is_finite and b.split.train_tasks is None
    assert b.num_test_tasks == CONTINUOUS[name]
    assert len(set(rows(b.test_tasks))) == CONTINUOUS[name]  # no duplicates


def test_continuous_test_set_requested_size_and_seeding():
    b = adaptrl.make("bandit-k5-n10", num_test_tasks=37)
    assert b.num_test_tasks == 37 and b.test_tasks.probs.shape == (37, 5)
    b0 = make("bandit-k5-n10")
    b1 = make("bandit-k5-n10", 1)
    assert b0.test_tasks.probs.shape == (1000, 5)
    again = adaptrl.make("bandit-k5-n10", split_seed=1)
    np.testing.assert_array_equal(
        np.asarray(again.test_tasks.probs), np.asarray(b1.test_tasks.probs)
    )
    assert not set(rows(b0.test_tasks)) & set(rows(b1.test_tasks))


@pytest.mark.parametrize("name", ["bandit-k5-n10", "point-nav"])
def test_train_sampler_never_returns_a_test_task(name):
    b = make(name)
    test = set(rows(b.test_tasks))
    # Keys from several streams, including the one make() uses by default (PRNGKey(0)).
    for seed in (0, 1):
        draws = rows(sample_train(b, seed, 5000))
        assert len(set(draws)) == 5000
        assert not set(draws) & test


def test_bandit_probs_are_uniform():
    probs = np.asarray(make("bandit-k5-n10").test_tasks.probs)  # 1000 x 5 draws of p(T)
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    assert abs(probs.mean() - 0.5) < 0.015
    assert abs(probs.var() - 1 / 12) < 0.004
    hist = np.histogram(probs, bins=5, range=(0, 1))[0] / probs.size
    np.testing.assert_allclose(hist, 0.2, atol=0.02)


def test_tabular_mdp_task_distribution():
    tasks = make("tabular-mdp-n10").test_tasks  # 1000 tasks
    mu = np.asarray(tasks.mean_rewards)
    assert mu.shape == (1000, 10, 5)
    assert abs(mu.mean() - 1.0) < 0.02 and abs(mu.std() - 1.0) < 0.02
    p = np.asarray(tasks.transitions)
    assert p.shape == (1000, 10, 5, 10) and p.min() >= 0.0
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    # Flat Dirichlet(1_10): each component has mean 0.1, variance 0.9 / 110, and
    # P(component > 0.3) = 0.7^9.
    assert abs(p.mean() - 0.1) < 1e-4
    assert abs(p.var() - 0.9 / 110) < 2e-4
    assert abs((p > 0.3).mean() - 0.7**9) < 0.005


@pytest.mark.parametrize(("name", "half_width"), [("point-nav", 0.5), ("point-nav-dense", 1.0)])
def test_point_goal_ranges(name, half_width):
    goals = np.asarray(sample_train(make(name), 3, 2000).goal)
    assert goals.shape == (2000, 2)
    assert goals.min() >= -half_width and goals.max() <= half_width
    assert goals.min() < -0.95 * half_width and goals.max() > 0.95 * half_width
    assert abs(goals.mean()) < 0.05 * half_width


# ---------------------------------------------------------------------------------------------
# split_tasks on its own
# ---------------------------------------------------------------------------------------------


def test_split_tasks_fraction_bounds_and_errors():
    tasks = FiniteTasks(GridGoalTask(goal=jnp.arange(20, dtype=jnp.int32).reshape(10, 2)))
    assert split_tasks(tasks, test_fraction=0.3).num_test_tasks == 3
    assert split_tasks(tasks, test_fraction=0.0).num_test_tasks == 1  # at least one held out
    assert split_tasks(tasks, test_fraction=1.0).num_train_tasks == 1  # at least one to train
    with pytest.raises(ValueError, match="at least 2 tasks"):
        split_tasks(FiniteTasks(GridGoalTask(goal=jnp.zeros((1, 2), jnp.int32))))
    with pytest.raises(ValueError, match="leading axis"):
        tree_size({"a": jnp.zeros((3,)), "b": jnp.zeros((4,))})


def test_grouped_split_keeps_groups_whole():
    goals = jnp.arange(24, dtype=jnp.int32).reshape(12, 2)
    groups = np.arange(12) // 3  # 4 groups of 3 tasks
    split = split_tasks(FiniteTasks(GridGoalTask(goal=goals), groups=groups), test_fraction=0.25)
    test_groups = {int(g) // 6 for g in np.asarray(split.test_tasks.goal)[:, 0]}
    train_groups = {int(g) // 6 for g in np.asarray(split.train_tasks.goal)[:, 0]}
    assert len(test_groups) == 1 and len(train_groups) == 3 and not test_groups & train_groups
    assert split.num_test_tasks == 3 and split.num_train_tasks == 9
    # Without groups the same set splits task by task, exactly as before groups existed.
    ungrouped = split_tasks(FiniteTasks(GridGoalTask(goal=goals)), test_fraction=0.25)
    assert ungrouped.num_test_tasks == 3
    with pytest.raises(ValueError, match="one integer label per task"):
        FiniteTasks(GridGoalTask(goal=goals), groups=np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="2 groups"):
        split_tasks(FiniteTasks(GridGoalTask(goal=goals), groups=np.zeros(12, np.int64)))


def test_sign_grid_split_holds_out_whole_sign_cells():
    b = make("sign-grid")
    cells = lambda t: {tuple(s) for s in np.asarray(t.sign).tolist()}  # noqa: E731
    test_cells, train_cells = cells(b.test_tasks), cells(b.split.train_tasks)
    assert len(test_cells) == 4 and len(train_cells) == 10 and not test_cells & train_cells


def test_split_tasks_continuous():
    dist = ContinuousTasks(lambda k: {"x": jax.random.normal(k, (3,))})
    split = split_tasks(dist, seed=5, num_test_tasks=11)
    assert split.num_test_tasks == 11 and split.train_tasks is None
    assert split.num_train_tasks is None
    same = split_tasks(dist, seed=5, num_test_tasks=11)
    np.testing.assert_array_equal(
        np.asarray(split.test_tasks["x"]), np.asarray(same.test_tasks["x"])
    )
    assert split.sample_train(jax.random.PRNGKey(0))["x"].shape == (3,)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_list_envs_names_and_descriptions():
    envs = adaptrl.list_envs()
    assert list(envs) == sorted(envs)
    for name in (
        "bandit-k5-n10",
        "tabular-mdp-n10",
        "point-nav",
        "point-nav-dense",
        "point-nav-sparse",
        "grid-varibad",
        "grid-nav2d",
        "sign-grid",
    ):
        assert name in envs and envs[name]
    assert all(isinstance(d, str) and d for d in envs.values())
    expected_bandits = {f"bandit-k{k}-n{n}" for k in (5, 10, 50) for n in (10, 100, 500)}
    extra_bandits = {"bandit-k2-n10", "bandit-k2-mirror-n20"}
    assert expected_bandits | extra_bandits == {n for n in envs if n.startswith("bandit")}
    assert {f"tabular-mdp-n{n}" for n in (10, 25, 50, 75, 100)} == {
        n for n in envs if n.startswith("tabular")
    }


def test_unknown_name_suggests_close_matches():
    with pytest.raises(adaptrl.UnknownEnvError, match="bandit-k5-n10") as info:
        adaptrl.make("bandit-k5-n1")
    assert isinstance(info.value, ValueError)
    assert "Did you mean" in str(info.value) and "'bandit-k5-n1'" in str(info.value)
    with pytest.raises(adaptrl.UnknownEnvError, match="grid-varibad"):
        adaptrl.make("grid-varibd")
    with pytest.raises(adaptrl.UnknownEnvError) as info:
        adaptrl.make("xyzzy")
    assert "Did you mean" not in str(info.value)
    assert "adaptrl list" in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"episodes_per_trial": 0},
        {"episodes_per_trial": -3},
        {"num_test_tasks": 0},
        {"num_test_tasks": -1},
    ],
)
def test_invalid_overrides_raise_value_error(overrides):
    with pytest.raises(ValueError, match=next(iter(overrides))):
        adaptrl.make("bandit-k5-n10", **overrides)


@pytest.mark.parametrize(
    ("name", "episodes", "horizon", "success_defined"),
    [
        ("bandit-k2-n10", 10, 1, False),
        ("bandit-k50-n500", 500, 1, False),
        ("tabular-mdp-n25", 25, 10, False),
        ("point-nav", 2, 100, True),
        ("point-nav-dense", 3, 20, True),
        ("point-nav-sparse", 3, 20, True),
        ("grid-varibad", 4, 15, True),
        ("grid-nav2d", 3, 40, True),
        ("sign-grid", 2, 25, True),
    ],
)
def test_registered_trial_lengths(name, episodes, horizon, success_defined):
    b = adaptrl.make(name, num_test_tasks=1)
    assert b.name == name and b.description == adaptrl.list_envs()[name]
    assert b.episodes_per_trial == episodes
    assert b.env.max_episode_steps == horizon
    assert b.steps_per_trial == episodes * horizon
    assert b.success_defined is success_defined
    if name.startswith("bandit"):
        assert b.env.num_arms == int(name.split("-")[1][1:])


def test_episodes_per_trial_override():
    b = adaptrl.make("grid-varibad", episodes_per_trial=7)
    assert b.episodes_per_trial == 7 and b.steps_per_trial == 7 * 15
    assert rows(b.test_tasks) == rows(make("grid-varibad").test_tasks)  # split unaffected
