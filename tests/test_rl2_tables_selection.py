"""``benchmarks/rl2_tables.py --select-every``: per-seed best-iterate bookkeeping and the
validation tasks it scores on."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import adaptrl


def test_keep_best_picks_each_seeds_best_iterate(benchmark_script):
    tables = benchmark_script("rl2_tables")
    seeds = 3
    iterates = [{"w": jnp.full((seeds, 2, 2), float(i)), "b": jnp.full((seeds,), float(i))}
                for i in range(4)]  # fmt: skip
    scores = np.array([[1.0, 5.0, 2.0], [3.0, 4.0, 2.0], [2.0, 6.0, 2.0], [0.0, 0.0, 2.0]])
    best, best_score = iterates[0], scores[0]
    for params, score in zip(iterates[1:], scores[1:], strict=True):
        best, best_score, _ = tables.keep_best(best, best_score, params, score)
    # seed 0 peaks at iterate 1, seed 1 at iterate 2, seed 2 ties throughout (keeps the first)
    np.testing.assert_array_equal(best_score, [3.0, 6.0, 2.0])
    np.testing.assert_array_equal(best["b"], [1.0, 2.0, 0.0])
    np.testing.assert_array_equal(best["w"][:, 0, 0], [1.0, 2.0, 0.0])
    assert best["w"].shape == (seeds, 2, 2)


def test_validation_tasks_come_from_training_distribution_not_test_split(benchmark_script):
    tables = benchmark_script("rl2_tables")
    bench = adaptrl.make("bandit-k5-n10")
    val = tables.validation_tasks(bench, 50)
    test = bench.test_tasks
    v = np.concatenate([np.asarray(x).reshape(50, -1) for x in jax.tree_util.tree_leaves(val)], 1)
    t = np.concatenate([np.asarray(x).reshape(len(x), -1) for x in jax.tree_util.tree_leaves(test)],
                       1)  # fmt: skip
    assert v.shape[0] == 50 and len(np.unique(v, axis=0)) == 50
    assert not (v[:, None, :] == t[None, :, :]).all(-1).any()  # no validation task is a test task
    again = tables.validation_tasks(bench, 50)
    for a, b in zip(jax.tree_util.tree_leaves(val), jax.tree_util.tree_leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)  # same key, same tasks
