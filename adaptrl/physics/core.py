"""The backend-independent physics interface: ``physics_reset`` and ``physics_step``.

Both are pure JAX functions of one robot (vmap them over environments; the native backend turns
a vmapped call into one batched host call). The physics state is an opaque, backend-specific
pytree; what rewards and observations may read is the ``Readout``.

Per-task physics (random masses, friction, ...) is a ``PhysicsParams`` dict mapping model field
names (``robots.PARAM_FIELDS``) to an affine change of the default values, an array of shape
``(2,) + field_shape`` holding ``[scale, offset]``: ``field = default * scale + offset``, e.g.
``{"body_mass": (2, nbody), "geom_friction": (2, ngeom, 3)}``; ``{}`` keeps the defaults.
Multipliers are ``[m, 0]``, absolute values ``[0, v]``. The native backend applies it to the
float64 defaults, so ``[1, 0]`` reproduces the default model exactly (absolute values would be
rounded to float32). Fields are replaced as the published random-parameter benchmarks do (no
``mj_setConst``: derived constants such as ``body_invweight0`` keep their default-model values,
on both backends).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from adaptrl.physics.robots import PARAM_FIELDS, RobotSpec, model_constants

BACKENDS = ("auto", "native", "mjx")
Backend = Literal["auto", "native", "mjx"]
PhysicsParams = dict[str, jax.Array]
PhysicsState = Any

BACKEND_ENV_VAR = "ADAPTRL_PHYSICS_BACKEND"


@struct.dataclass
class Readout:
    """What the physics exposes to rewards and observations (float32).

    Attributes:
      qpos: (nq,) joint positions after the step.
      qvel: (nv,) joint velocities after the step.
      track_pos: (2,) planar position of the robot's tracked point (see ``RobotSpec.track``).
      track_delta: (2,) its displacement over the control step, computed in float64 before the
        cast (so ``track_delta / dt`` is the velocity Gymnasium computes); zeros after reset.
      extras: ``{name: array}`` for ``RobotSpec.extras``: ``cfrc_ext (nbody, 6)``,
        ``cinert (nbody, 10)``, ``cvel (nbody, 6)``, ``qfrc_actuator (nv,)``.
    """

    qpos: jax.Array
    qvel: jax.Array
    track_pos: jax.Array
    track_delta: jax.Array
    extras: dict[str, jax.Array]


def extra_shape(robot: RobotSpec, name: str) -> tuple[int, ...]:
    c = model_constants(robot.name)
    shapes = {
        "cfrc_ext": (c["nbody"], 6),
        "cinert": (c["nbody"], 10),
        "cvel": (c["nbody"], 6),
        "qfrc_actuator": (c["nv"],),
    }
    if name not in shapes:
        raise ValueError(f"unsupported extra {name!r}; supported: {sorted(shapes)}")
    return shapes[name]


def resolve_backend(backend: str) -> str:
    """``"auto"`` -> ``"native"`` on CPU, ``"mjx"`` on accelerators (env var overrides)."""
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV_VAR, "auto") or "auto"
    if backend == "auto":
        return "native" if jax.default_backend() == "cpu" else "mjx"
    if backend not in ("native", "mjx"):
        raise ValueError(f"physics backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def check_params(robot: RobotSpec, params: PhysicsParams) -> None:
    """Trace-time check that ``params`` names known fields with the model's shapes."""
    c = model_constants(robot.name)
    for name, value in params.items():
        if name not in PARAM_FIELDS:
            raise ValueError(f"unknown physics parameter {name!r}; supported: {PARAM_FIELDS}")
        want = (2,) + c[name].shape
        if tuple(jnp.shape(value)) != want:
            raise ValueError(
                f"physics parameter {name} must have shape {want} ([scale, offset]) for one "
                f"env, got {tuple(jnp.shape(value))}"
            )


def sample_reset_noise(robot: RobotSpec, key: jax.Array) -> jax.Array:
    """(nq + nv,) float32 perturbation of the initial state, Gymnasium v5's distribution:
    qpos + U(-s, s), and qvel + U(-s, s) or + s·N(0, 1) (``robot.reset_noise``)."""
    c = model_constants(robot.name)
    nq, nv = c["nq"], c["nv"]
    s = robot.reset_noise_scale
    # One draw for both parts (auto-reset computes this for every env at every step): U(-1, 1),
    # and the normal part by inverse CDF, as jax.random.normal does internally.
    u = jax.random.uniform(key, (nq + nv,), jnp.float32, np.nextafter(np.float32(-1), 0), 1.0)
    if robot.reset_noise == "uniform":
        return s * u
    # erf_inv over the whole vector and a select, not slices and a concatenate: the same values,
    # but XLA fuses it into one loop (about a third cheaper at 64 envs, paid on every step).
    normal = s * np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)
    return jnp.where(jnp.arange(nq + nv) < nq, s * u, normal)


def physics_reset(
    robot: RobotSpec,
    backend: str,
    noise: jax.Array,
    params: PhysicsParams,
    num_threads: int = 0,
) -> tuple[PhysicsState, Readout]:
    """Start an episode at ``qpos0 + noise[:nq]``, ``noise[nq:]`` (velocities), as Gymnasium.

    Args:
      robot: static robot spec.
      backend: ``"auto"``, ``"native"`` or ``"mjx"``.
      noise: (nq + nv,) float32 from ``sample_reset_noise``.
      params: per-task model fields (``{}`` for the defaults).
      num_threads: native backend threads (0 = one per available core).
    """
    check_params(robot, params)
    if resolve_backend(backend) == "native":
        from adaptrl.physics import native

        return native.reset(robot, noise, params, num_threads)
    from adaptrl.physics import mjx_backend

    return mjx_backend.reset(robot, noise, params)


def physics_step(
    robot: RobotSpec,
    backend: str,
    state: PhysicsState,
    ctrl: jax.Array,
    params: PhysicsParams,
    num_threads: int = 0,
) -> tuple[PhysicsState, Readout]:
    """Apply ``ctrl`` ((nu,) float32, unclipped, as Gymnasium) for ``frame_skip`` substeps."""
    check_params(robot, params)
    if resolve_backend(backend) == "native":
        from adaptrl.physics import native

        return native.step(robot, state, ctrl, params, num_threads)
    from adaptrl.physics import mjx_backend

    return mjx_backend.step(robot, state, ctrl, params)
