"""Rigid-body physics for the MuJoCo task families, behind one functional interface.

Two backends compute the same transition (``reset`` / ``step`` on a batch of robots):

- ``"native"``: the MuJoCo C library on the host, batched over environments and stepped in
  native threads (MuJoCo releases the GIL inside ``mj_step``), reached from jitted code through
  one ``jax.pure_callback`` per batched call. The physics state is carried through JAX as the
  exact float64 MuJoCo state (bit pattern in ``uint32`` words), so trajectories match
  Gymnasium's MuJoCo environments bit for bit even when JAX runs in float32.
- ``"mjx"``: ``mujoco.mjx``, pure JAX (vmappable, differentiable, runs on accelerators).

``"auto"`` (the default) picks native on CPU and MJX on GPU/TPU; the environment variable
``ADAPTRL_PHYSICS_BACKEND`` overrides it. Nothing here imports ``mujoco`` at import time: it is
an optional extra (``pip install -e ".[mujoco]"``), loaded on first use.
"""

from adaptrl.physics.core import (
    BACKENDS,
    PhysicsParams,
    Readout,
    physics_reset,
    physics_step,
    resolve_backend,
)
from adaptrl.physics.robots import ROBOTS, RobotSpec, model_constants, require_mujoco

__all__ = [
    "BACKENDS",
    "ROBOTS",
    "PhysicsParams",
    "Readout",
    "RobotSpec",
    "model_constants",
    "physics_reset",
    "physics_step",
    "require_mujoco",
    "resolve_backend",
]
