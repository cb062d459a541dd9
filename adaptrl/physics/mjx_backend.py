"""MJX backend: the same transition in pure JAX with ``mujoco.mjx`` (for GPUs/TPUs).

Per-task physics parameters replace fields of the ``mjx.Model`` inside the traced function, so a
vmap over tasks gives every environment its own model without recompiling. MJX computes in
JAX's default precision (float32 unless ``jax_enable_x64``) and its solver differs in detail
from the C library's, so trajectories agree with the native backend only approximately (see
``tests/test_mujoco_physics.py`` for the tolerance that is tested).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct

from adaptrl.physics.core import PhysicsParams, Readout, extra_shape
from adaptrl.physics.robots import RobotSpec, load_model, model_constants, require_mujoco


@struct.dataclass
class MjxState:
    """Per-environment state: the full ``mjx.Data`` and the tracked point (2,)."""

    data: object
    track: jax.Array


@functools.cache
def _base_model(name: str):
    require_mujoco()
    from mujoco import mjx

    return mjx.put_model(load_model(name))


def _model(robot: RobotSpec, params: PhysicsParams):
    mx = _base_model(robot.name)
    if params:
        fields = {}
        for name, affine in params.items():
            default = getattr(mx, name)
            affine = jnp.asarray(affine, default.dtype)
            fields[name] = default * affine[0] + affine[1]
        mx = mx.replace(**fields)
    return mx


def _track_point(robot: RobotSpec, mx, d) -> jax.Array:
    if robot.track == "root_x":
        return jnp.stack([d.qpos[0], jnp.zeros_like(d.qpos[0])])
    if robot.track == "body":
        return d.xpos[robot.track_body, :2]
    mass = mx.body_mass[:, None]
    return (jnp.sum(mass * d.xipos, axis=0) / jnp.sum(mass))[:2]


def _readout(robot: RobotSpec, d, track, delta, zero_cfrc: bool) -> Readout:
    extras = {}
    for name in robot.extras:
        if name == "cfrc_ext" and zero_cfrc:
            extras[name] = jnp.zeros(extra_shape(robot, name), jnp.float32)
        else:
            extras[name] = getattr(d, name).astype(jnp.float32)
    f32 = jnp.float32
    return Readout(
        d.qpos.astype(f32), d.qvel.astype(f32), track.astype(f32), delta.astype(f32), extras
    )


def reset(robot: RobotSpec, noise: jax.Array, params: PhysicsParams) -> tuple[MjxState, Readout]:
    """Gymnasium's reset: state ``qpos0 + noise``, zero controls, then ``mj_forward``."""
    from mujoco import mjx

    c = model_constants(robot.name)
    nq = c["nq"]
    mx = _model(robot, params)
    d = mjx.make_data(mx)
    dtype = d.qpos.dtype
    d = d.replace(
        qpos=jnp.asarray(c["init_qpos"], dtype) + noise[:nq].astype(dtype),
        qvel=jnp.asarray(c["init_qvel"], dtype) + noise[nq:].astype(dtype),
    )
    d = mjx.forward(mx, d)
    track = _track_point(robot, mx, d)
    return MjxState(d, track), _readout(robot, d, track, jnp.zeros_like(track), True)


def step(
    robot: RobotSpec, state: MjxState, ctrl: jax.Array, params: PhysicsParams
) -> tuple[MjxState, Readout]:
    """``frame_skip`` MJX steps with ``ctrl``, then ``rne_postconstraint`` when needed."""
    from mujoco import mjx

    mx = _model(robot, params)
    d = state.data.replace(ctrl=jnp.asarray(ctrl, state.data.ctrl.dtype))
    d = jax.lax.fori_loop(0, robot.frame_skip, lambda _, x: mjx.step(mx, x), d)
    if robot.needs_rne:
        d = mjx.rne_postconstraint(mx, d)
    track = _track_point(robot, mx, d)
    return MjxState(d, track), _readout(robot, d, track, track - state.track, False)
