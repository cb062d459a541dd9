"""The robots (Gymnasium v5 MuJoCo models) and what the physics layer must report for each.

A ``RobotSpec`` is static, hashable configuration: which XML asset, how many MuJoCo substeps per
control step (``frame_skip``), which point's planar displacement the rewards need (``track``),
and which extra ``mjData`` arrays the observation or reward reads (``extras``). The XML files are
Gymnasium's own v5 assets, so dynamics match ``gymnasium.make("<Robot>-v5")``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from pathlib import Path
from typing import Literal

import numpy as np

INSTALL_HINT = 'pip install -e ".[mujoco]"'

Track = Literal["root_x", "body", "com"]


class MujocoNotInstalledError(ImportError):
    """MuJoCo (or Gymnasium, whose assets we load) is missing."""


def require_mujoco():
    """Import and return ``mujoco``, or raise a clear error saying how to install it."""
    try:
        import mujoco
    except ImportError as e:
        raise MujocoNotInstalledError(
            f"the MuJoCo task families need the optional 'mujoco' extra: {INSTALL_HINT} "
            f"(import failed: {e})"
        ) from e
    return mujoco


@dataclasses.dataclass(frozen=True)
class RobotSpec:
    """Static description of one robot.

    Attributes:
      name: key in ``ROBOTS`` (``"half_cheetah"``, ``"ant"``, ...).
      xml: file name in Gymnasium's ``envs/mujoco/assets`` folder.
      frame_skip: MuJoCo steps per control step (Gymnasium v5); ``dt = timestep * frame_skip``.
      track: the point whose planar displacement rewards use, read as Gymnasium v5 reads it:
        ``"root_x"``: ``qpos[0]`` (planar robots; y is 0); ``"body"``: ``xpos[track_body, :2]``
        (Ant's torso); ``"com"``: mass-weighted mean of ``xipos`` (Humanoid). ``xpos``/``xipos``
        come from the last forward pass inside ``mj_step``, i.e. before the final substep's
        integration, exactly what Gymnasium reads.
      track_body: body index for ``track == "body"``.
      extras: ``mjData`` arrays (body-major) returned after every step: any of ``"cfrc_ext"``
        (needs ``mj_rnePostConstraint``, as Gymnasium calls), ``"cinert"``, ``"cvel"``,
        ``"qfrc_actuator"``.
      reset_noise: ``"uniform"``: qpos and qvel get U[-s, s]; ``"uniform_normal"``: qpos gets
        U[-s, s] and qvel gets s·N(0, 1) (Gymnasium v5 HalfCheetah and Ant).
      reset_noise_scale: ``s``.
    """

    name: str
    xml: str
    frame_skip: int
    track: Track = "root_x"
    track_body: int = 1
    extras: tuple[str, ...] = ()
    reset_noise: Literal["uniform", "uniform_normal"] = "uniform"
    reset_noise_scale: float = 0.1

    @property
    def needs_rne(self) -> bool:
        return "cfrc_ext" in self.extras

    @property
    def reset_needs_forward(self) -> bool:
        """The reset observation needs quantities only a forward pass computes.

        Otherwise the native backend defers the reset's ``mj_forward`` to the next step, so an
        auto-reset that is computed every step and usually discarded costs nothing.
        """
        return self.track == "com" or any(e != "cfrc_ext" for e in self.extras)


ROBOTS: dict[str, RobotSpec] = {
    r.name: r
    for r in (
        RobotSpec("half_cheetah", "half_cheetah.xml", 5, "root_x", reset_noise="uniform_normal"),
        RobotSpec("ant", "ant.xml", 5, "body", 1, ("cfrc_ext",), reset_noise="uniform_normal"),
        RobotSpec("hopper", "hopper.xml", 4, "root_x", reset_noise_scale=5e-3),
        RobotSpec("walker2d", "walker2d_v5.xml", 4, "root_x", reset_noise_scale=5e-3),
        RobotSpec(
            "humanoid",
            "humanoid.xml",
            5,
            "com",
            extras=("cinert", "cvel", "qfrc_actuator", "cfrc_ext"),
            reset_noise_scale=1e-2,
        ),
    )
}


def get_robot(name: str) -> RobotSpec:
    if name not in ROBOTS:
        raise ValueError(f"unknown robot {name!r}; known: {', '.join(sorted(ROBOTS))}")
    return ROBOTS[name]


def asset_path(robot: RobotSpec) -> Path:
    """Path of the robot's XML inside the installed Gymnasium package (not imported)."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        raise MujocoNotInstalledError(
            f"the MuJoCo task families load Gymnasium's v5 robot models: {INSTALL_HINT}"
        )
    path = Path(spec.submodule_search_locations[0]) / "envs" / "mujoco" / "assets" / robot.xml
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; is gymnasium>=1.0 installed?")
    return path


@functools.cache
def load_model(name: str):
    """The robot's ``mujoco.MjModel`` (cached; never mutate it, copy it)."""
    mujoco = require_mujoco()
    return mujoco.MjModel.from_xml_path(str(asset_path(get_robot(name))))


# Model fields that tasks may override per environment (random-physics families).
PARAM_FIELDS = ("body_mass", "body_inertia", "dof_damping", "dof_armature", "geom_friction")


@functools.cache
def model_constants(name: str) -> dict:
    """Sizes and default values of the robot model, as plain Python/NumPy (read-only).

    Keys: ``nq, nv, nu, na, nbody, ngeom`` (ints), ``dt`` (float, control step),
    ``init_qpos (nq,)``, ``init_qvel (nv,)``, ``ctrl_low``, ``ctrl_high`` (floats), the
    ``PARAM_FIELDS`` arrays, ``body_names`` and ``joint_names`` (tuples of str).
    """
    mujoco = require_mujoco()
    robot = get_robot(name)
    m = load_model(name)
    lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
    if not (np.all(lo == lo[0]) and np.all(hi == hi[0])):
        raise ValueError(f"{name}: per-actuator control ranges differ; adaptrl's Box needs one")
    consts = {
        "nq": int(m.nq),
        "nv": int(m.nv),
        "nu": int(m.nu),
        "na": int(m.na),
        "nbody": int(m.nbody),
        "ngeom": int(m.ngeom),
        "dt": float(m.opt.timestep * robot.frame_skip),
        "init_qpos": np.array(m.qpos0, np.float64),
        "init_qvel": np.zeros(m.nv, np.float64),
        "ctrl_low": float(lo[0]),
        "ctrl_high": float(hi[0]),
        "body_names": tuple(
            mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(m.nbody)
        ),
        "joint_names": tuple(
            mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(m.njnt)
        ),
    }
    for field in PARAM_FIELDS:
        arr = np.array(getattr(m, field), np.float64)
        arr.setflags(write=False)
        consts[field] = arr
    for key in ("init_qpos", "init_qvel"):
        consts[key].setflags(write=False)
    return consts
