"""MuJoCo locomotion task families: velocity, direction, goal and random-physics tasks.

One environment class, ``Locomotion``, covers every family: a robot (Gymnasium v5 model and
semantics: frame skip, observation layout, healthy checks and termination, reset noise) plus an
*objective* that turns the physics ``Readout`` and the task into a reward. The task is a pytree
of arrays passed to ``reset``/``step``; rewards and observations are pure JAX functions of the
readout and the task, so every algorithm can jit and vmap them. Physics runs on the backend the
``backend`` field selects (``adaptrl.physics``: native MuJoCo on CPU, MJX on accelerators).

Objectives (``v`` = planar velocity of the tracked point = displacement / dt, ``a`` = action):

- ``forward``  (Gymnasium v5): ``w_f · v_x + healthy − ctrl − contact``; with a physics task
  this is the random-parameter families' reward.
- ``velocity`` (HalfCheetah-Vel): ``−|v_x − v*| − ctrl``, task ``VelocityTask``.
- ``direction`` (HalfCheetah-Dir, Ant-Dir, Humanoid-Dir): ``w_f · ⟨v_xy, d⟩ + healthy − ctrl −
  contact``, task ``DirectionTask`` (unit vector; (±1, 0) for the forward/backward variants).
- ``goal`` (Ant-Goal): ``−‖p_xy − g‖₁ + healthy − ctrl − contact``, task ``GoalTask``.

``ctrl = w_c · ‖a‖²``; ``contact`` is Gymnasium's per-robot contact cost (Ant: clipped
``cfrc_ext``; Humanoid: unclipped, capped at 10). Random physics (``RandParamsTask``,
``EPOptTask``) works with any objective. Static config is the dataclass; tasks are arrays.

Registered names (``adaptrl list``) are listed in ``register_all``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from adaptrl.envs.base import Box, Environment, make_timestep
from adaptrl.physics.core import (
    BACKENDS,
    PhysicsParams,
    Readout,
    physics_reset,
    physics_step,
    sample_reset_noise,
)
from adaptrl.physics.robots import get_robot, model_constants, require_mujoco

Objective = Literal["forward", "velocity", "direction", "goal"]


# ------------------------------------------------------------------------------------ tasks
@struct.dataclass
class ForwardTask:
    """No task parameter (the plain Gymnasium reward). ``dummy``: () float32, unused."""

    dummy: jax.Array


@struct.dataclass
class VelocityTask:
    velocity: jax.Array  # () float32, target forward velocity


@struct.dataclass
class DirectionTask:
    direction: jax.Array  # (2,) float32 unit vector in the ground plane


@struct.dataclass
class GoalTask:
    goal: jax.Array  # (2,) float32 goal position of the tracked point


@struct.dataclass
class RandParamsTask:
    """Log-multipliers (base 1.5) of model fields, rand_param_envs style (MAML/ProMP/PEARL).

    Each element is scaled by ``1.5 ** x`` with ``x ~ U[-3, 3]`` drawn per element:
    body_mass (nbody,), body_inertia (nbody, 3), dof_damping (nv,), geom_friction (ngeom, 3).
    """

    body_mass: jax.Array
    body_inertia: jax.Array
    dof_damping: jax.Array
    geom_friction: jax.Array


@struct.dataclass
class EPOptTask:
    """EPOpt physics (Rajeswaran et al. 2017), absolute values (float32 scalars).

    ``friction``: sliding friction of every geom; ``damping`` / ``armature``: of every actuated
    joint (the planar root's three joints keep their own); ``torso_mass``: mass of body 1, or
    NaN to keep the default (HalfCheetah's range lists no mass).
    """

    friction: jax.Array
    damping: jax.Array
    armature: jax.Array
    torso_mass: jax.Array


LocomotionTask = ForwardTask | VelocityTask | DirectionTask | GoalTask | RandParamsTask | EPOptTask


@struct.dataclass
class LocomotionState:
    physics: object  # backend-specific (adaptrl.physics.native.NativeState / mjx_backend.MjxState)
    t: jax.Array  # () int32


# Gymnasium v5 reward constants per robot.
_V5 = {
    "half_cheetah": dict(forward=1.0, ctrl=0.1, contact=0.0, healthy=0.0),
    "ant": dict(forward=1.0, ctrl=0.5, contact=5e-4, healthy=1.0),
    "hopper": dict(forward=1.0, ctrl=1e-3, contact=0.0, healthy=1.0),
    "walker2d": dict(forward=1.0, ctrl=1e-3, contact=0.0, healthy=1.0),
    "humanoid": dict(forward=1.25, ctrl=0.1, contact=5e-7, healthy=5.0),
}
_ROOT_DOFS = {"half_cheetah": 3, "hopper": 3, "walker2d": 3, "ant": 6, "humanoid": 6}


@dataclasses.dataclass(frozen=True)
class Locomotion(Environment):
    """A MuJoCo robot with a task-dependent reward and optionally task-dependent physics.

    Attributes:
      robot: ``"half_cheetah"``, ``"ant"``, ``"hopper"``, ``"walker2d"`` or ``"humanoid"``.
      objective: reward kind (module docstring); must match the task type.
      max_episode_steps: time limit (truncation).
      forward_weight, ctrl_cost_weight, contact_cost_weight, healthy_reward: reward constants;
        ``None`` = the Gymnasium v5 value of the robot.
      terminate_when_unhealthy: Gymnasium v5 healthy checks end the episode (not HalfCheetah).
      backend: physics backend, ``"auto"`` (native on CPU, MJX on accelerators), ``"native"``,
        ``"mjx"``.
      num_threads: native backend host threads (0 = one per available core).
    """

    robot: str = "half_cheetah"
    objective: Objective = "forward"
    max_episode_steps: int = 1000
    forward_weight: float | None = None
    ctrl_cost_weight: float | None = None
    contact_cost_weight: float | None = None
    healthy_reward: float | None = None
    terminate_when_unhealthy: bool = True
    backend: str = "auto"
    num_threads: int = 0

    def __post_init__(self):
        get_robot(self.robot)
        if self.objective not in ("forward", "velocity", "direction", "goal"):
            raise ValueError(f"unknown objective {self.objective!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {self.num_threads}")

    def with_backend(self, backend: str, num_threads: int | None = None) -> Locomotion:
        """The same environment on another physics backend."""
        nt = self.num_threads if num_threads is None else num_threads
        return dataclasses.replace(self, backend=backend, num_threads=nt)

    # ------------------------------------------------------------------- static properties
    @property
    def spec(self):
        return get_robot(self.robot)

    @property
    def constants(self) -> dict:
        return model_constants(self.robot)

    def _weight(self, name: str, value: float | None) -> float:
        return _V5[self.robot][name] if value is None else value

    @property
    def dt(self) -> float:
        return self.constants["dt"]

    @property
    def observation_space(self):
        c = self.constants
        nb = c["nbody"] - 1
        sizes = {
            "half_cheetah": c["nq"] - 1 + c["nv"],
            "hopper": c["nq"] - 1 + c["nv"],
            "walker2d": c["nq"] - 1 + c["nv"],
            "ant": c["nq"] - 2 + c["nv"] + 6 * nb,
            "humanoid": c["nq"] - 2 + c["nv"] + (10 + 6 + 6) * nb + c["nv"] - 6,
        }
        return Box(-jnp.inf, jnp.inf, (sizes[self.robot],))

    @property
    def action_space(self):
        c = self.constants
        return Box(c["ctrl_low"], c["ctrl_high"], (c["nu"],))

    # ------------------------------------------------------------------------- pure parts
    def physics_params(self, task) -> PhysicsParams:
        """Model-field changes the task makes, ``{field: [scale, offset]}`` (``{}`` if none)."""
        c = self.constants

        def affine(scale, offset):
            return jnp.stack([scale, offset]).astype(jnp.float32)

        if isinstance(task, RandParamsTask):
            fields = ("body_mass", "body_inertia", "dof_damping", "geom_friction")
            return {
                f: affine(jnp.power(1.5, getattr(task, f)), jnp.zeros(c[f].shape)) for f in fields
            }
        if isinstance(task, EPOptTask):
            root = _ROOT_DOFS[self.robot]

            def set_values(field, index, value):
                scale = jnp.ones(c[field].shape).at[index].set(0.0)
                return affine(scale, jnp.zeros(c[field].shape).at[index].set(value))

            keep_mass = jnp.isnan(task.torso_mass)  # HalfCheetah's range lists no mass
            mass = affine(
                jnp.ones(c["body_mass"].shape).at[1].set(jnp.where(keep_mass, 1.0, 0.0)),
                jnp.zeros(c["body_mass"].shape)
                .at[1]
                .set(jnp.where(keep_mass, 0.0, task.torso_mass)),
            )
            return {
                "geom_friction": set_values("geom_friction", (slice(None), 0), task.friction),
                "dof_damping": set_values("dof_damping", slice(root, None), task.damping),
                "dof_armature": set_values("dof_armature", slice(root, None), task.armature),
                "body_mass": mass,
            }
        return {}

    def model_fields(self, task) -> dict[str, jax.Array]:
        """The task's values of the changed model fields (float32; for inspection and tests)."""
        c = self.constants
        return {
            f: jnp.asarray(c[f], jnp.float32) * a[0] + a[1]
            for f, a in self.physics_params(task).items()
        }

    def observation(self, r: Readout) -> jax.Array:
        """Gymnasium v5 observation of the robot (float32)."""
        if self.robot == "half_cheetah":
            parts = [r.qpos[1:], r.qvel]
        elif self.robot in ("hopper", "walker2d"):
            parts = [r.qpos[1:], jnp.clip(r.qvel, -10.0, 10.0)]
        elif self.robot == "ant":
            parts = [r.qpos[2:], r.qvel, jnp.clip(r.extras["cfrc_ext"][1:], -1.0, 1.0).ravel()]
        else:  # humanoid
            e = r.extras
            parts = [
                r.qpos[2:],
                r.qvel,
                e["cinert"][1:].ravel(),
                e["cvel"][1:].ravel(),
                e["qfrc_actuator"][6:],
                e["cfrc_ext"][1:].ravel(),
            ]
        return jnp.concatenate(parts).astype(jnp.float32)

    def is_healthy(self, r: Readout) -> jax.Array:
        """Gymnasium v5 healthy check (always True for HalfCheetah)."""
        q, v = r.qpos, r.qvel
        if self.robot == "hopper":
            state = jnp.concatenate([q, v])[2:]
            return (
                jnp.all((state > -100.0) & (state < 100.0))
                & (q[1] > 0.7)
                & (q[2] > -0.2)
                & (q[2] < 0.2)
            )
        if self.robot == "walker2d":
            return (q[1] > 0.8) & (q[1] < 2.0) & (q[2] > -1.0) & (q[2] < 1.0)
        if self.robot == "ant":
            finite = jnp.all(jnp.isfinite(q)) & jnp.all(jnp.isfinite(v))
            return finite & (q[2] >= 0.2) & (q[2] <= 1.0)
        if self.robot == "humanoid":
            return (q[2] > 1.0) & (q[2] < 2.0)
        return jnp.bool_(True)

    def contact_cost(self, r: Readout) -> jax.Array:
        w = self._weight("contact", self.contact_cost_weight)
        if self.robot == "ant":
            return w * jnp.sum(jnp.square(jnp.clip(r.extras["cfrc_ext"], -1.0, 1.0)))
        if self.robot == "humanoid":
            return jnp.minimum(w * jnp.sum(jnp.square(r.extras["cfrc_ext"])), 10.0)
        return jnp.float32(0.0)

    def task_reward(self, r: Readout, task) -> jax.Array:
        """The objective's task-dependent term (forward velocity, tracking error, ...)."""
        velocity = r.track_delta / jnp.float32(self.dt)
        w = self._weight("forward", self.forward_weight)
        if self.objective == "forward":
            return w * velocity[0]
        if self.objective == "velocity":
            return -jnp.abs(velocity[0] - task.velocity)
        if self.objective == "direction":
            return w * jnp.dot(velocity, task.direction)
        return -jnp.sum(jnp.abs(r.track_pos - task.goal))  # goal

    def reward(self, r: Readout, action: jax.Array, task, healthy: jax.Array) -> jax.Array:
        ctrl = self._weight("ctrl", self.ctrl_cost_weight) * jnp.sum(jnp.square(action))
        bonus = self._weight("healthy", self.healthy_reward) * healthy.astype(jnp.float32)
        return self.task_reward(r, task) + bonus - ctrl - self.contact_cost(r)

    def _check_task(self, task) -> None:
        expected = {
            "velocity": VelocityTask,
            "direction": DirectionTask,
            "goal": GoalTask,
        }.get(self.objective)
        if expected is not None and not isinstance(task, expected):
            raise TypeError(
                f"objective {self.objective!r} needs a {expected.__name__}, got "
                f"{type(task).__name__}"
            )

    # ------------------------------------------------------------------------ env API
    def reset(self, key, task):
        self._check_task(task)
        noise = sample_reset_noise(self.spec, key)
        physics, r = physics_reset(
            self.spec, self.backend, noise, self.physics_params(task), self.num_threads
        )
        return LocomotionState(physics=physics, t=jnp.int32(0)), make_timestep(self.observation(r))

    def step(self, key, state: LocomotionState, action, task):
        del key  # MuJoCo dynamics are deterministic
        self.check_action(action)
        self._check_task(task)
        action = jnp.asarray(action, jnp.float32)
        physics, r = physics_step(
            self.spec, self.backend, state.physics, action, self.physics_params(task),
            self.num_threads,
        )  # fmt: skip
        healthy = self.is_healthy(r)
        terminated = jnp.logical_and(self.terminate_when_unhealthy, jnp.logical_not(healthy))
        t = state.t + 1
        ts = make_timestep(
            self.observation(r),
            self.reward(r, action, task, healthy),
            terminated=terminated,
            truncated=t >= self.max_episode_steps,
        )
        return LocomotionState(physics=physics, t=t), ts


# ----------------------------------------------------------------------- task distributions
def sample_velocity(key, low: float, high: float) -> VelocityTask:
    return VelocityTask(jax.random.uniform(key, (), jnp.float32, low, high))


def sample_forward_backward(key) -> DirectionTask:
    sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0).astype(jnp.float32)
    return DirectionTask(jnp.stack([sign, jnp.float32(0.0)]))


def sample_direction_2d(key) -> DirectionTask:
    angle = jax.random.uniform(key, (), jnp.float32, 0.0, 2.0 * math.pi)
    return DirectionTask(jnp.stack([jnp.cos(angle), jnp.sin(angle)]))


def sample_disk_goal(key, radius: float = 3.0) -> GoalTask:
    """Goal at radius ``radius * sqrt(U)`` and angle ``U[0, 2π]`` (uniform on the disk)."""
    k_r, k_a = jax.random.split(key)
    r = radius * jnp.sqrt(jax.random.uniform(k_r, (), jnp.float32))
    angle = jax.random.uniform(k_a, (), jnp.float32, 0.0, 2.0 * math.pi)
    return GoalTask(jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)]))


def sample_rand_params(key, robot: str, log_scale_limit: float = 3.0) -> RandParamsTask:
    c = model_constants(robot)
    keys = jax.random.split(key, 4)
    fields = ("body_mass", "body_inertia", "dof_damping", "geom_friction")
    return RandParamsTask(
        **{
            f: jax.random.uniform(k, c[f].shape, jnp.float32, -log_scale_limit, log_scale_limit)
            for f, k in zip(fields, keys, strict=True)
        }
    )


def _truncated_normal(key, mean: float, std: float, low: float, high: float) -> jax.Array:
    lo, hi = (low - mean) / std, (high - mean) / std
    return mean + std * jax.random.truncated_normal(key, lo, hi, (), jnp.float32)


# EPOpt ranges (seed 001 / EPOpt Table 1): (mean, std, low, high).
EPOPT_RANGES = {
    "hopper": dict(
        friction=(2.0, 0.25, 1.5, 2.5),
        damping=(2.5, 1.0, 1.0, 4.0),
        armature=(1.0, 0.25, 0.5, 1.5),
        torso_mass=(6.0, 1.5, 3.0, 9.0),
    ),
    "half_cheetah": dict(
        friction=(0.5, 0.1, 0.3, 0.7),
        damping=(1.5, 0.5, 0.5, 2.5),
        armature=(0.125, 0.04, 0.05, 0.2),
    ),
}


def sample_epopt(key, robot: str) -> EPOptTask:
    ranges = EPOPT_RANGES[robot]
    keys = jax.random.split(key, 4)
    values = {
        name: _truncated_normal(k, *ranges[name]) if name in ranges else jnp.float32(jnp.nan)
        for name, k in zip(("friction", "damping", "armature", "torso_mass"), keys, strict=True)
    }
    return EPOptTask(**values)


# ------------------------------------------------------------------------------ registry
HORIZON = 200  # PEARL / MAML / VariBAD episode length for these families
EPISODES_PER_TRIAL = 2
# Held-out tasks per family (a meta-test costs NUM_TEST_TASKS x 2 x 200 physics steps per seed;
# PEARL evaluates on 30 or fewer). ``adaptrl.make(name, num_test_tasks=...)`` overrides it.
NUM_TEST_TASKS = 100


def _builder(env_kwargs: dict, sampler, description: str):
    def build():
        from adaptrl.tasks.distribution import ContinuousTasks

        require_mujoco()
        env = Locomotion(max_episode_steps=HORIZON, **env_kwargs)
        _ = env.observation_space  # loads the model now: a missing asset fails in make()
        return env, ContinuousTasks(sampler, description), EPISODES_PER_TRIAL, False

    return build


FAMILIES: dict[str, tuple[dict, object, str, str]] = {
    "cheetah-vel": (
        dict(robot="half_cheetah", objective="velocity", ctrl_cost_weight=0.05),
        functools.partial(sample_velocity, low=0.0, high=3.0),
        "v*~U[0,3]",
        "HalfCheetah-Vel, target velocity ~U[0,3] (PEARL), H=200",
    ),
    "cheetah-vel-maml": (
        dict(robot="half_cheetah", objective="velocity", ctrl_cost_weight=0.05),
        functools.partial(sample_velocity, low=0.0, high=2.0),
        "v*~U[0,2]",
        "HalfCheetah-Vel, target velocity ~U[0,2] (MAML), H=200",
    ),
    "cheetah-dir": (
        dict(robot="half_cheetah", objective="direction", ctrl_cost_weight=0.05),
        sample_forward_backward,
        "direction in {+1,-1}",
        "HalfCheetah-Dir, run forward or backward, H=200",
    ),
    "ant-dir": (
        dict(robot="ant", objective="direction"),
        sample_forward_backward,
        "direction in {+x,-x}",
        "Ant-Dir, walk forward or backward, H=200",
    ),
    "ant-dir-2d": (
        dict(robot="ant", objective="direction"),
        sample_direction_2d,
        "angle~U[0,2pi]",
        "Ant-Dir 2-D, walk along a direction with angle ~U[0,2pi], H=200",
    ),
    "ant-goal": (
        dict(robot="ant", objective="goal", ctrl_cost_weight=0.1, healthy_reward=0.0),
        sample_disk_goal,
        "goal uniform on the disk of radius 3",
        "Ant-Goal, reach a goal at radius 3*sqrt(U), angle U[0,2pi] (L1 reward), H=200",
    ),
    "humanoid-dir": (
        dict(robot="humanoid", objective="direction"),
        sample_direction_2d,
        "angle~U[0,2pi]",
        "Humanoid-Dir, run along a direction with angle ~U[0,2pi], H=200",
    ),
    "hopper-rand-params": (
        dict(robot="hopper", objective="forward"),
        functools.partial(sample_rand_params, robot="hopper"),
        "mass/inertia/damping/friction x 1.5^U[-3,3]",
        "Hopper-Rand-Params, masses, inertias, damping, friction x 1.5^U[-3,3], H=200",
    ),
    "walker-rand-params": (
        dict(robot="walker2d", objective="forward"),
        functools.partial(sample_rand_params, robot="walker2d"),
        "mass/inertia/damping/friction x 1.5^U[-3,3]",
        "Walker2d-Rand-Params, masses, inertias, damping, friction x 1.5^U[-3,3], H=200",
    ),
    "hopper-epopt": (
        dict(robot="hopper", objective="forward"),
        functools.partial(sample_epopt, robot="hopper"),
        "EPOpt Hopper ranges",
        "Hopper with EPOpt physics (friction, damping, armature, torso mass ~ trunc. normal)",
    ),
    "cheetah-epopt": (
        dict(robot="half_cheetah", objective="forward"),
        functools.partial(sample_epopt, robot="half_cheetah"),
        "EPOpt HalfCheetah ranges",
        "HalfCheetah with EPOpt physics (friction, damping, armature ~ trunc. normal)",
    ),
}


def register_all(register) -> None:
    """Register every family with ``register(name, build, description)`` (imports no MuJoCo)."""
    for name, (kwargs, sampler, dist_desc, desc) in FAMILIES.items():
        register(
            name,
            _builder(kwargs, sampler, dist_desc),
            desc + " [needs .[mujoco]]",
            num_test_tasks=NUM_TEST_TASKS,
        )


def forward_task() -> ForwardTask:
    """The single task of the plain Gymnasium environment (``objective="forward"``)."""
    return ForwardTask(jnp.float32(0.0))


def state_float64(state: LocomotionState) -> np.ndarray:
    """Native backend: the exact float64 MuJoCo state ``[time, qpos, qvel, act, warmstart]``
    plus the tracked point, as NumPy (for tests and debugging)."""
    return np.ascontiguousarray(np.asarray(state.physics.words)).view(np.float64)
