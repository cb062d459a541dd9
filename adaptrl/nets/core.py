"""Networks: MLP torso and memory cores with one interface.

A *memory core* maps ``(carry, x) -> (carry, y)`` for one time step; ``initial_carry(kind, size)``
gives its empty memory. GRU and LSTM are provided; an attention or transformer core only has to
register the same two things in ``CORES`` (its carry would be a window of past embeddings) to
slot into the RL² agent and its training loop unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """Dense layers with ``activation`` between them (and after the last when ``activate_last``)."""

    features: Sequence[int]
    activation: str = "tanh"
    activate_last: bool = True

    @nn.compact
    def __call__(self, x):
        act = getattr(nn, self.activation)
        for i, f in enumerate(self.features):
            x = nn.Dense(f, kernel_init=nn.initializers.orthogonal(jnp.sqrt(2.0)))(x)
            if i < len(self.features) - 1 or self.activate_last:
                x = act(x)
        return x


class GRUCore(nn.Module):
    """Gated recurrent unit; carry: (hidden,) float32."""

    hidden_size: int

    @nn.compact
    def __call__(self, carry, x):
        return nn.GRUCell(features=self.hidden_size)(carry, x)


class LSTMCore(nn.Module):
    """Long short-term memory; carry: ((hidden,), (hidden,)) cell and hidden state."""

    hidden_size: int

    @nn.compact
    def __call__(self, carry, x):
        return nn.OptimizedLSTMCell(features=self.hidden_size)(carry, x)


def _zeros(hidden_size: int) -> jax.Array:
    return jnp.zeros((hidden_size,), jnp.float32)


# kind -> (module class, initial carry as a function of hidden_size). The initial carry is a plain
# function so rollouts can create it without binding the module to parameters.
CORES = {
    "gru": (GRUCore, _zeros),
    "lstm": (LSTMCore, lambda h: (_zeros(h), _zeros(h))),
}


def make_core(kind: str, hidden_size: int) -> nn.Module:
    if kind not in CORES:
        raise ValueError(f"unknown memory core {kind!r}; choose one of {sorted(CORES)}")
    return CORES[kind][0](hidden_size=hidden_size)


def initial_carry(kind: str, hidden_size: int) -> Any:
    """The empty memory of a core of this ``kind`` (one unbatched carry)."""
    if kind not in CORES:
        raise ValueError(f"unknown memory core {kind!r}; choose one of {sorted(CORES)}")
    return CORES[kind][1](hidden_size)


def zeros_like_tree(tree):
    return jax.tree_util.tree_map(jnp.zeros_like, tree)
