"""Fixed-capacity replay storage as jittable pytrees: one ring buffer, or one per task.

A ``ReplayBuffer`` holds ``data`` (any pytree whose leaves have leading axis ``capacity``), the
next write slot ``position`` and the number of valid items ``size``. Every function is pure and
jittable; shapes are static (capacity, batch sizes), contents and counters are arrays.

Per-task replay (PEARL keeps one buffer per meta-training task) is the same structure with an
extra leading task axis on every leaf, counter included: build it with ``init_task_buffers``
and either ``jax.vmap`` the single-buffer functions over it, or use ``add_to_tasks`` /
``sample_tasks``, which scatter into and gather from a *subset* of the tasks directly (no copy
of the untouched tasks' storage).

Writing wraps around: once ``size == capacity`` the oldest items are overwritten first.

Two kinds of samples, as PEARL draws them:

- ``sample``: RL batches, uniform over everything stored (with replacement);
- ``sample_recent``: context batches, uniform over the most recent ``window`` items only (PEARL
  draws context from recently collected data so that it matches what the policy sees at
  meta-test). PEARL's separate "encoder buffer", cleared before each task's data collection, is
  a second ``ReplayBuffer`` emptied with ``clear``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

PyTree = Any


@struct.dataclass
class Experience:
    """One transition as stored for off-policy learning (batched on leading axes in a buffer).

    Attributes:
      observation: (obs_dim,) float32, what the learner conditions on (may include task
        features for oracle learners).
      action: (action_dim,) float32, in the policy's normalised [-1, 1] range.
      reward: () float32, the environment's reward (what an agent observes; PEARL's context).
      train_reward: () float32, the reward the critic is trained on (equal to ``reward`` unless
        the environment defines a separate training reward, e.g. PEARL's dense reward for the
        sparse point robot).
      next_observation: (obs_dim,) float32.
      terminated: () bool, true terminal (no bootstrapping); time-limit ends are not terminal.
    """

    observation: jax.Array
    action: jax.Array
    reward: jax.Array
    train_reward: jax.Array
    next_observation: jax.Array
    terminated: jax.Array


@struct.dataclass
class ReplayBuffer:
    """Ring buffer. ``data`` leaves: (capacity, ...); ``position``, ``size``: () int32.

    With a task axis (``init_task_buffers``) every leaf has one more leading axis (tasks,).
    """

    data: PyTree
    position: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return int(jax.tree_util.tree_leaves(self.data)[0].shape[self.position.ndim])


def init_buffer(example: PyTree, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like ``example`` (one unbatched item)."""
    if capacity < 1:
        raise ValueError(f"replay capacity must be >= 1, got {capacity}")
    data = jax.tree_util.tree_map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example
    )
    return ReplayBuffer(data=data, position=jnp.int32(0), size=jnp.int32(0))


def init_task_buffers(example: PyTree, capacity: int, num_tasks: int) -> ReplayBuffer:
    """``num_tasks`` empty buffers stacked on a leading task axis."""
    one = init_buffer(example, capacity)
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (num_tasks,) + x.shape), one)


def _write_slots(position, n: int, capacity: int, mask):
    """Slots for ``n`` new items (``mask`` False items get the out-of-range slot ``capacity``,
    dropped by the scatter) and the number actually written."""
    if mask is None:
        mask = jnp.ones((n,), jnp.bool_)
    offset = jnp.cumsum(mask.astype(jnp.int32)) - 1
    slots = jnp.where(mask, (position + offset) % capacity, capacity)
    return slots, mask.sum().astype(jnp.int32)


def add(buffer: ReplayBuffer, items: PyTree, mask: jax.Array | None = None) -> ReplayBuffer:
    """Append ``items`` (leaves (n, ...)) in order; items with ``mask`` False are skipped.

    ``n`` (static) must not exceed the capacity, so no slot is written twice in one call.
    """
    capacity = buffer.capacity
    n = jax.tree_util.tree_leaves(items)[0].shape[0]
    if n > capacity:
        raise ValueError(f"cannot add {n} items at once to a buffer of capacity {capacity}")
    slots, count = _write_slots(buffer.position, n, capacity, mask)
    data = jax.tree_util.tree_map(
        lambda d, x: d.at[slots].set(x.astype(d.dtype), mode="drop"), buffer.data, items
    )
    return ReplayBuffer(
        data=data,
        position=(buffer.position + count) % capacity,
        size=jnp.minimum(buffer.size + count, capacity),
    )


def clear(buffer: ReplayBuffer) -> ReplayBuffer:
    """Forget everything (the storage is kept; it is overwritten by later writes)."""
    zero = jnp.zeros_like(buffer.position)
    return buffer.replace(position=zero, size=zero)


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> PyTree:
    """``batch_size`` stored items, uniformly with replacement; leaves (batch_size, ...).

    An empty buffer returns slot 0 (zeros): check ``size`` before relying on the result.
    """
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree_util.tree_map(lambda d: d[idx], buffer.data)


def sample_recent(buffer: ReplayBuffer, key: jax.Array, batch_size: int, window: int) -> PyTree:
    """``batch_size`` items drawn uniformly (with replacement) from the newest ``window``."""
    n = jnp.maximum(jnp.minimum(buffer.size, window), 1)
    back = jax.random.randint(key, (batch_size,), 0, n)
    idx = (buffer.position - 1 - back) % buffer.capacity
    return jax.tree_util.tree_map(lambda d: d[idx], buffer.data)


def add_to_tasks(
    buffers: ReplayBuffer, task_idx: jax.Array, items: PyTree, mask: jax.Array | None = None
) -> ReplayBuffer:
    """Append ``items`` (leaves (k, n, ...)) to the buffers of tasks ``task_idx`` (k,).

    ``task_idx`` must not repeat (two writes to one task in a call would collide).
    """
    capacity = buffers.capacity
    k, n = jax.tree_util.tree_leaves(items)[0].shape[:2]
    if n > capacity:
        raise ValueError(f"cannot add {n} items at once to buffers of capacity {capacity}")
    mask = jnp.ones((k, n), jnp.bool_) if mask is None else mask
    slots, count = jax.vmap(lambda p, m: _write_slots(p, n, capacity, m))(
        buffers.position[task_idx], mask
    )
    rows = jnp.broadcast_to(task_idx[:, None], (k, n))
    data = jax.tree_util.tree_map(
        lambda d, x: d.at[rows, slots].set(x.astype(d.dtype), mode="drop"), buffers.data, items
    )
    return ReplayBuffer(
        data=data,
        position=buffers.position.at[task_idx].set((buffers.position[task_idx] + count) % capacity),
        size=buffers.size.at[task_idx].set(jnp.minimum(buffers.size[task_idx] + count, capacity)),
    )


def clear_tasks(buffers: ReplayBuffer, task_idx: jax.Array) -> ReplayBuffer:
    """Empty the buffers of tasks ``task_idx``."""
    return buffers.replace(
        position=buffers.position.at[task_idx].set(0), size=buffers.size.at[task_idx].set(0)
    )


def sample_tasks(
    buffers: ReplayBuffer,
    task_idx: jax.Array,
    key: jax.Array,
    batch_size: int,
    window: int | None = None,
) -> PyTree:
    """``batch_size`` items from each of the buffers ``task_idx`` (k,); leaves (k, batch, ...).

    Uniform over all stored items, or over the newest ``window`` of each buffer when given.
    """
    size = buffers.size[task_idx]
    if window is not None:
        size = jnp.minimum(size, window)
    shape = (task_idx.shape[0], batch_size)
    back = jax.random.randint(key, shape, 0, jnp.maximum(size, 1)[:, None])
    if window is None:
        slots = back  # the first `size` slots hold the data (oldest first) until full
    else:
        slots = (buffers.position[task_idx][:, None] - 1 - back) % buffers.capacity
    rows = task_idx[:, None]
    return jax.tree_util.tree_map(lambda d: d[rows, slots], buffers.data)


def take_tasks(buffers: ReplayBuffer, task_idx: jax.Array) -> ReplayBuffer:
    """The buffers of tasks ``task_idx`` (k,), stacked (k, ...): vmap single-buffer code over it."""
    return jax.tree_util.tree_map(lambda x: x[task_idx], buffers)


def put_tasks(buffers: ReplayBuffer, task_idx: jax.Array, sub: ReplayBuffer) -> ReplayBuffer:
    """Write back buffers taken with ``take_tasks`` (``task_idx`` must not repeat)."""
    return jax.tree_util.tree_map(lambda x, y: x.at[task_idx].set(y), buffers, sub)


def sample_task_windows(buffers: ReplayBuffer, task_idx: jax.Array, key: jax.Array, length: int,
                        align: int = 1) -> PyTree:  # fmt: skip
    """One window of ``length`` consecutive stored items from each buffer ``task_idx`` (k,);
    leaves (k, length, ...). Windows start at a random multiple of ``align`` below ``size`` (with
    ``align`` = the episode length and whole episodes written from slot 0, a window is one
    episode). Items past ``size`` are stale: keep ``length`` <= the stored count."""
    size = buffers.size[task_idx]
    starts = jax.random.randint(key, task_idx.shape, 0, jnp.maximum(size // align, 1)) * align
    slots = (starts[:, None] + jnp.arange(length)[None, :]) % buffers.capacity
    return jax.tree_util.tree_map(lambda d: d[task_idx[:, None], slots], buffers.data)
