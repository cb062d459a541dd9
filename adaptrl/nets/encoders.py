"""Permutation-invariant context encoders q(z | c) for inference-based meta-RL (PEARL).

A context ``c`` is a set of transitions, each a flat vector (s, a, r[, s']). A shared MLP maps
every transition on its own to a factor; the factors are then combined by an operation that does
not depend on their order:

- ``"gaussian"`` (PEARL's information bottleneck): each transition gives a Gaussian factor
  ``N(mu_n, diag(var_n))`` and the posterior is their normalised product,
  ``var = 1 / sum_n 1/var_n``, ``mu = var * sum_n mu_n / var_n``;
- ``"deterministic"``: ``z`` is the mean of the per-transition outputs (no KL term).

Both combinations are sums of per-transition statistics (``ContextStats``), so a posterior can
be refined online by adding the statistics of each new trajectory, in O(1) memory, and a padded
context is handled by a mask. An empty context gives the prior ``N(0, I)`` (``z = 0`` for the
deterministic encoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from adaptrl.nets.core import MLP

EncoderKind = Literal["gaussian", "deterministic"]

MIN_VARIANCE = 1e-7  # PEARL's floor on each factor's variance (keeps precisions finite)


class ContextEncoder(nn.Module):
    """Per-transition MLP: (..., context_dim) -> (mu (..., latent), var (..., latent)).

    For the deterministic kind ``var`` is ones (unused).
    """

    hidden_sizes: Sequence[int]
    latent_dim: int
    kind: EncoderKind = "gaussian"

    @nn.compact
    def __call__(self, transitions):
        h = MLP(self.hidden_sizes, activation="relu")(transitions)
        if self.kind == "deterministic":
            mu = nn.Dense(self.latent_dim)(h)
            return mu, jnp.ones_like(mu)
        out = nn.Dense(2 * self.latent_dim)(h)
        mu, pre_var = jnp.split(out, 2, axis=-1)
        return mu, jnp.maximum(jax.nn.softplus(pre_var), MIN_VARIANCE)


@struct.dataclass
class ContextStats:
    """Sufficient statistics of a context for either encoder kind (each (latent,) or ()).

    Gaussian: ``weight = sum 1/var_n`` (precision), ``weighted_mu = sum mu_n / var_n``.
    Deterministic: ``weight = count`` (broadcast), ``weighted_mu = sum mu_n``.
    ``count``: number of transitions summarised.
    """

    weight: jax.Array
    weighted_mu: jax.Array
    count: jax.Array

    @classmethod
    def empty(cls, latent_dim: int) -> ContextStats:
        z = jnp.zeros((latent_dim,), jnp.float32)
        return cls(weight=z, weighted_mu=z, count=jnp.float32(0.0))

    def __add__(self, other: ContextStats) -> ContextStats:
        return jax.tree_util.tree_map(jnp.add, self, other)


def context_stats(mu, var, mask=None, kind: EncoderKind = "gaussian") -> ContextStats:
    """Statistics of N factors: ``mu``, ``var`` (N, latent), ``mask`` (N,) bool or None."""
    m = jnp.ones(mu.shape[:-1], jnp.float32) if mask is None else mask.astype(jnp.float32)
    if kind == "gaussian":
        precision = m[:, None] / var
        return ContextStats(precision.sum(0), (precision * mu).sum(0), m.sum())
    count = m.sum()
    return ContextStats(
        jnp.broadcast_to(count, mu.shape[-1:]), (m[:, None] * mu).sum(0), count
    )


def posterior(stats: ContextStats, kind: EncoderKind = "gaussian"):
    """``(mean, variance)`` of q(z | c), each (latent,); the prior N(0, I) for an empty context.

    Deterministic kind: ``(mean of the outputs, zeros)``.
    """
    has_data = stats.count > 0
    if kind == "gaussian":
        var = 1.0 / jnp.maximum(stats.weight, 1e-12)
        mean = var * stats.weighted_mu
        return jnp.where(has_data, mean, 0.0), jnp.where(has_data, var, 1.0)
    mean = stats.weighted_mu / jnp.maximum(stats.count, 1.0)
    return mean, jnp.zeros_like(mean)


def product_of_gaussians(mu, var, mask=None):
    """Normalised product of Gaussian factors ``mu``, ``var`` (N, latent) -> (mean, var)."""
    return posterior(context_stats(mu, var, mask, "gaussian"), "gaussian")


def kl_to_standard_normal(mean, var):
    """KL( N(mean, diag var) || N(0, I) ), summed over the last axis."""
    return 0.5 * jnp.sum(var + mean**2 - 1.0 - jnp.log(var), axis=-1)


def sample_latent(key, mean, var):
    """Reparameterised draw ``mean + sqrt(var) * eps`` (``var`` zeros: exactly ``mean``)."""
    return mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape)
