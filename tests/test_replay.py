"""Replay ring buffers: wrap-around, masks, per-task storage under jit and vmap, sampling."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adaptrl.rollout import replay


def _items(start, n):
    """Items numbered start..start+n-1, as a pytree with two leaves of different shapes."""
    ids = jnp.arange(start, start + n, dtype=jnp.int32)
    return {"id": ids, "vec": jnp.stack([ids, -ids], axis=-1).astype(jnp.float32)}


def _reference(chunks, masks, capacity):
    """What a ring buffer of this capacity holds, slot by slot, after these writes (pure Python)."""
    slots, pos, size = [None] * capacity, 0, 0
    for chunk, mask in zip(chunks, masks, strict=True):
        for x, m in zip(chunk, mask, strict=True):
            if m:
                slots[pos] = x
                pos = (pos + 1) % capacity
                size = min(size + 1, capacity)
    return slots, pos, size


def test_wrap_around_under_jit_matches_reference():
    capacity = 7
    buf = replay.init_buffer({"id": jnp.int32(0), "vec": jnp.zeros(2)}, capacity)
    add = jax.jit(replay.add)
    rng = np.random.default_rng(0)
    chunks, masks, start = [], [], 0
    for n in [3, 5, 6, 2, 7, 4]:  # 27 items through 7 slots: wraps several times
        mask = rng.random(n) < 0.8
        buf = add(buf, _items(start, n), jnp.asarray(mask))
        chunks.append(list(range(start, start + n)))
        masks.append(mask)
        start += n
        slots, pos, size = _reference(chunks, masks, capacity)
        assert int(buf.position) == pos and int(buf.size) == size
        for s, want in enumerate(slots):
            if want is not None:
                assert int(buf.data["id"][s]) == want
                np.testing.assert_array_equal(buf.data["vec"][s], [want, -want])


def test_oldest_items_are_overwritten_first():
    buf = replay.init_buffer(jnp.int32(0), 4)
    buf = replay.add(buf, jnp.arange(3))
    buf = replay.add(buf, jnp.arange(3, 6))  # 6 items into 4 slots: 0 and 1 are gone
    assert sorted(np.asarray(buf.data).tolist()) == [2, 3, 4, 5]
    assert int(buf.size) == 4 and int(buf.position) == 2
    recent = replay.sample_recent(buf, jax.random.PRNGKey(0), 200, window=2)
    assert set(np.asarray(recent).tolist()) == {4, 5}
    with pytest.raises(ValueError, match="capacity"):
        replay.add(buf, jnp.arange(5))


def test_per_task_buffers_under_jit_and_vmap():
    num_tasks, capacity = 3, 5
    bufs = replay.init_task_buffers(jnp.int32(0), capacity, num_tasks)
    add = jax.jit(jax.vmap(replay.add))
    # Task t keeps the first t+2 items of each chunk of 4 (different fill rates per task).
    deques = [collections.deque(maxlen=capacity) for _ in range(num_tasks)]
    for c in range(4):
        items = jnp.arange(4)[None, :] + 100 * c + 1000 * jnp.arange(num_tasks)[:, None]
        mask = jnp.arange(4)[None, :] < (jnp.arange(num_tasks)[:, None] + 2)
        bufs = add(bufs, items, mask)
        for t in range(num_tasks):
            deques[t].extend(int(x) for x, m in zip(items[t], mask[t], strict=True) if m)
    for t in range(num_tasks):
        held = [int(x) for x in np.asarray(bufs.data[t])[: int(bufs.size[t])]]
        assert sorted(held) == sorted(deques[t])
        # The newest item sits just before `position`.
        assert int(bufs.data[t][(int(bufs.position[t]) - 1) % capacity]) == deques[t][-1]


def test_add_and_sample_a_subset_of_tasks():
    bufs = replay.init_task_buffers(jnp.int32(0), 6, 4)
    idx = jnp.array([2, 0])
    items = jnp.array([[20, 21, 22], [0, 1, 2]])
    bufs = jax.jit(replay.add_to_tasks)(bufs, idx, items)
    bufs = replay.add_to_tasks(bufs, idx, items + 3, jnp.array([[True, False, True], [True] * 3]))
    np.testing.assert_array_equal(bufs.size, [6, 0, 5, 0])
    np.testing.assert_array_equal(bufs.data[0], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(bufs.data[2][:5], [20, 21, 22, 23, 25])
    # Same result as vmapping the single-buffer add over the taken buffers.
    ref = replay.put_tasks(
        replay.init_task_buffers(jnp.int32(0), 6, 4), idx,
        jax.vmap(replay.add)(replay.take_tasks(replay.init_task_buffers(jnp.int32(0), 6, 4), idx),
                             items),
    )  # fmt: skip
    np.testing.assert_array_equal(
        replay.add_to_tasks(replay.init_task_buffers(jnp.int32(0), 6, 4), idx, items).data,
        ref.data,
    )
    sample = jax.jit(replay.sample_tasks, static_argnums=(3,))
    s = sample(bufs, jnp.array([0, 2]), jax.random.PRNGKey(1), 300)
    assert s.shape == (2, 300)
    assert set(np.asarray(s[0]).tolist()) == {0, 1, 2, 3, 4, 5}
    assert set(np.asarray(s[1]).tolist()) == {20, 21, 22, 23, 25}  # never the empty 6th slot
    recent = replay.sample_tasks(bufs, jnp.array([2]), jax.random.PRNGKey(2), 100, window=2)
    assert set(np.asarray(recent[0]).tolist()) == {23, 25}
    cleared = replay.clear_tasks(bufs, jnp.array([0]))
    assert int(cleared.size[0]) == 0 and int(cleared.size[2]) == 5
    cleared = replay.add(replay.take_tasks(cleared, 0), jnp.array([9]))
    np.testing.assert_array_equal(replay.sample(cleared, jax.random.PRNGKey(3), 10), [9] * 10)


def test_windows_are_whole_aligned_episodes():
    bufs = replay.init_task_buffers(jnp.int32(0), 12, 2)
    bufs = replay.add_to_tasks(bufs, jnp.array([0, 1]), jnp.arange(24).reshape(2, 12))
    w = replay.sample_task_windows(bufs, jnp.array([1, 1, 0]), jax.random.PRNGKey(0), 4, align=4)
    assert w.shape == (3, 4)
    for row in np.asarray(w):
        assert row[0] % 4 == 0 and list(row) == list(range(row[0], row[0] + 4))
    assert set(np.asarray(w[:2, 0]).tolist()) <= {12, 16, 20}
