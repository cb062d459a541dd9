"""Native MuJoCo backend: batched ``mj_step`` in host threads, called from jitted code.

One ``jax.pure_callback`` (``vmap_method="broadcast_all"``) per control step carries the whole
batch of environments to the host, where a persistent thread pool steps contiguous chunks of it
(``mj_step`` releases the GIL, so the chunks run in parallel on the cores). Each thread owns one
``MjData`` scratch buffer; an environment's full state travels with the call, so any mix of
resets, tasks and batch layouts is valid and the JAX side stays purely functional.

The state is MuJoCo's own float64 state, ``[time, qpos, qvel, act, qacc_warmstart]`` (the
solver's warm start is part of it: without it trajectories drift away from Gymnasium's within a
few hundred steps) plus the tracked point, reinterpreted as ``uint32`` words so that it survives
JAX's default float32 mode without rounding.

A reset that needs no forward-pass quantity for its observation is *lazy*: it only records the
reset noise, and the next step performs Gymnasium's reset sequence (``ctrl = 0``, zero warm
start, ``mj_forward``) before stepping. Auto-reset computes a reset on every step and usually
discards it; laziness makes that free.

Per-task physics parameters are written into per-environment-slot ``MjModel`` copies, only for
the slots whose values changed since the previous call (tasks change between trials, not steps).
The default model itself is never modified.

The per-env loop runs in a small C worker (``_native_kernel.c``, compiled with the system C
compiler against the MuJoCo wheel on first use and cached under ``~/.cache/adaptrl``), so the
threads never take the GIL between environments. Without a compiler, or with
``ADAPTRL_NATIVE_KERNEL=0``, the same loop runs in Python (about 10% slower per env step); both
give bit-identical states (tested).

On CPU the default path skips Python altogether: the step is an XLA FFI custom call
(``_native_ffi.cc``, built with the system C++ compiler against MuJoCo and JAX's FFI headers, cached
like the C worker) that steps the batch on its own persistent threads, applies per-task physics to
its own per-slot model copies, and writes the packed outputs straight into XLA's buffers. The
``pure_callback`` path above remains the fallback (no C++ compiler, a non-CPU default backend, or
``ADAPTRL_NATIVE_FFI=0``, read at trace time); both give bit-identical results (tested). Its idle
threads sleep at once; ``ADAPTRL_NATIVE_SPIN_US`` makes them spin that long first (slower on 2
cores, where the spinner competes with XLA's work between calls).
"""

from __future__ import annotations

import copy
import ctypes
import functools
import hashlib
import math
import os
import subprocess
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from adaptrl.physics.core import PhysicsParams, Readout, extra_shape
from adaptrl.physics.robots import (
    PARAM_FIELDS,
    RobotSpec,
    load_model,
    model_constants,
    require_mujoco,
)


@struct.dataclass
class NativeState:
    """Per-environment state of the native backend.

    Attributes:
      words: (2 * (nstate + 2),) uint32, the float64 vector
        ``[time, qpos, qvel, act, qacc_warmstart, track_x, track_y]`` bit for bit.
      pending: () bool, a lazy reset whose ``mj_forward`` runs at the next step.
      noise: (nq + nv,) float32 reset noise (read only when ``pending``).
    """

    words: jax.Array
    pending: jax.Array
    noise: jax.Array


def state_size(robot: RobotSpec) -> int:
    """Length of MuJoCo's ``TIME|QPOS|QVEL|ACT|WARMSTART`` state vector."""
    c = model_constants(robot.name)
    return 1 + c["nq"] + c["nv"] + c["na"] + c["nv"]


def default_num_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


KERNEL_ENV_VAR = "ADAPTRL_NATIVE_KERNEL"
FFI_ENV_VAR = "ADAPTRL_NATIVE_FFI"  # "0": step through pure_callback (read at trace time)
FFI_TARGET = "adaptrl_mujoco_step"
_TRACK_CODES = {"root_x": 0, "body": 1, "com": 2}
_EXTRA_CODES = {"cfrc_ext": 0, "cinert": 1, "cvel": 2, "qfrc_actuator": 3}
_KERNEL_LOCK = threading.Lock()
_KERNEL: list = []  # [ctypes function or None], filled on first use
_FFI: list = []  # [ctypes library or None], filled on first use


def _compile(mj, src_name: str, compiler: str, flags: list[str]) -> Path:
    """Build ``src_name`` (next to this file) against the installed MuJoCo wheel, cached by
    content, compiler flags and library versions."""
    src = Path(__file__).with_name(src_name)
    mj_dir = Path(mj.__file__).parent
    libs = sorted(mj_dir.glob("libmujoco.so*")) or sorted(mj_dir.glob("libmujoco*.dylib"))
    if not libs or not (mj_dir / "include" / "mujoco" / "mujoco.h").exists():
        raise RuntimeError(f"no MuJoCo library or headers in {mj_dir}")
    key = [src.read_bytes(), str(libs[0]).encode(), mj.__version__.encode()]
    if src_name.endswith(".cc"):  # the FFI headers and ABI follow jaxlib
        key.append(jax.__version__.encode())
    key.append(" ".join(flags).encode())
    digest = hashlib.sha256(b"\0".join(key)).hexdigest()[:16]
    cache = Path(os.environ.get("ADAPTRL_CACHE_DIR", Path.home() / ".cache" / "adaptrl"))
    target = cache / f"{Path(src_name).stem.lstrip('_')}_{digest}.so"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        out = Path(tmp) / target.name
        cmd = [compiler, "-O2", "-shared", "-fPIC", *flags, "-o", str(out), str(src),
               f"-I{mj_dir / 'include'}", str(libs[0]), f"-Wl,-rpath,{mj_dir}"]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr.strip()[-2000:]}")
        os.replace(out, target)  # atomic: concurrent builders agree
    return target


def _compile_kernel(mj) -> Path:
    """Build ``_native_kernel.c`` (the pure_callback path's C worker)."""
    return _compile(mj, "_native_kernel.c", os.environ.get("CC", "cc"), [])


def _compile_ffi(mj) -> Path:
    """Build ``_native_ffi.cc`` (the FFI custom call) with JAX's FFI headers.

    ``-ffp-contract=off``: no fused multiply-adds, so the float64 arithmetic done here (reset
    state, per-task model fields, tracked point) rounds exactly as NumPy's does on the old path.
    """
    flags = ["-std=c++17", "-ffp-contract=off", "-pthread", "-w", f"-I{jax.ffi.include_dir()}"]
    return _compile(mj, "_native_ffi.cc", os.environ.get("CXX", "g++"), flags)


def load_kernel(mj):
    """The compiled worker function, or None (Python fallback) with one warning saying why."""
    with _KERNEL_LOCK:
        if _KERNEL:
            return _KERNEL[0]
        fn = None
        if os.environ.get(KERNEL_ENV_VAR, "1") != "0" and sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(str(_compile_kernel(mj)))
                fn = lib.adaptrl_worker
                c = ctypes
                fn.argtypes = [c.c_int, c.c_int64] + [c.c_void_p] * 8 + [c.c_int] * 7 + [
                    c.c_void_p, c.c_void_p, c.c_int64
                ]  # fmt: skip
                fn.restype = c.c_int
            except (OSError, RuntimeError) as e:
                warnings.warn(
                    f"adaptrl: native MuJoCo kernel unavailable, using the Python loop ({e})",
                    RuntimeWarning,
                    stacklevel=2,
                )
                fn = None
        _KERNEL.append(fn)
        return fn


def load_ffi(mj):
    """The compiled FFI library (its target registered with JAX), or None with one warning."""
    with _KERNEL_LOCK:
        if _FFI:
            return _FFI[0]
        lib = None
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(str(_compile_ffi(mj)))
                c = ctypes
                lib.adaptrl_host_create.argtypes = [c.c_uint64] + [c.c_int] * 6 + [
                    c.c_void_p, c.c_void_p, c.c_void_p, c.c_double
                ]  # fmt: skip
                lib.adaptrl_host_create.restype = c.c_int64
                lib.adaptrl_host_slot_field.argtypes = [c.c_int64, c.c_int64, c.c_int, c.c_void_p]
                lib.adaptrl_host_slot_field.restype = c.c_int64
                jax.ffi.register_ffi_target(
                    FFI_TARGET, jax.ffi.pycapsule(lib.AdaptrlMujocoStep), platform="cpu"
                )
            except (OSError, RuntimeError, AttributeError) as e:
                warnings.warn(
                    f"adaptrl: native MuJoCo FFI call unavailable, using pure_callback ({e})",
                    RuntimeWarning,
                    stacklevel=2,
                )
                lib = None
        _FFI.append(lib)
        return lib


def use_ffi() -> bool:
    """Trace-time choice of the step path: the FFI custom call unless switched off, off CPU,
    or not buildable here."""
    if os.environ.get(FFI_ENV_VAR, "1") == "0" or jax.default_backend() != "cpu":
        return False
    return load_ffi(require_mujoco()) is not None


class NativeBatch:
    """Host-side stepper for one robot: thread pool, scratch ``MjData``, per-slot models."""

    def __init__(self, robot: RobotSpec, num_threads: int = 0):
        mj = require_mujoco()
        self.mj = mj
        self.robot = robot
        self.model = load_model(robot.name)
        c = model_constants(robot.name)
        self.nq, self.nv, self.nu = c["nq"], c["nv"], c["nu"]
        self.init_qpos, self.init_qvel = c["init_qpos"], c["init_qvel"]
        self.spec = int(
            mj.mjtState.mjSTATE_TIME
            | mj.mjtState.mjSTATE_QPOS
            | mj.mjtState.mjSTATE_QVEL
            | mj.mjtState.mjSTATE_ACT
            | mj.mjtState.mjSTATE_WARMSTART
        )
        self.ns = state_size(robot)
        assert self.ns == mj.mj_stateSize(self.model, self.spec), "unexpected MuJoCo state layout"
        self.num_threads = num_threads or default_num_threads()
        self.datas = [mj.MjData(self.model) for _ in range(self.num_threads)]
        self.pool = (
            ThreadPoolExecutor(self.num_threads - 1, thread_name_prefix="adaptrl-mujoco")
            if self.num_threads > 1
            else None
        )
        self.lock = threading.Lock()  # one batched call at a time (the scratch data is shared)
        self.slot_models: list = []
        self.slot_params: dict[str, np.ndarray] = {}
        self.kernel = load_kernel(mj)
        self.total_mass = float(np.sum(self.model.body_mass))  # Gymnasium's mass_center divisor
        self.extra_codes = np.array([_EXTRA_CODES[n] for n in robot.extras], np.int32)
        self.extras_size = sum(math.prod(extra_shape(robot, n)) for n in robot.extras)
        self._shared_ptrs = np.zeros(0, np.uint64)
        self._shared_mass = np.zeros(0)
        self._ffi_id: int | None = None

    @property
    def ffi_id(self) -> int:
        """Id of this robot's host in the FFI library (created on first use; lives as long as
        the process, like this object): its threads, scratch data and slot models."""
        if self._ffi_id is None:
            lib = load_ffi(self.mj)
            robot = self.robot
            codes = np.ascontiguousarray(self.extra_codes, np.int32)
            qpos0 = np.ascontiguousarray(self.init_qpos, np.float64)
            qvel0 = np.ascontiguousarray(self.init_qvel, np.float64)
            self._ffi_args = (codes, qpos0, qvel0)  # keep alive (the host copies them anyway)
            args = (self.model._address, self.num_threads, robot.frame_skip,
                    int(robot.needs_rne), _TRACK_CODES[robot.track], robot.track_body,
                    len(codes), codes.ctypes.data, qpos0.ctypes.data, qvel0.ctypes.data,
                    self.total_mass)  # fmt: skip
            self._ffi_id = int(lib.adaptrl_host_create(*args))
        return self._ffi_id

    def ffi_slot_field(self, slot: int, name: str) -> np.ndarray:
        """A copy of ``name`` (a ``PARAM_FIELDS`` entry) in the FFI host's model for env slot
        ``slot`` (for tests: the FFI path keeps its slot models in C++)."""
        default = getattr(self.model, name)
        out = np.empty(default.shape)
        size = load_ffi(self.mj).adaptrl_host_slot_field(
            self.ffi_id, slot, PARAM_FIELDS.index(name), out.ctypes.data
        )
        if size != out.size:
            raise IndexError(f"the FFI host has no model for slot {slot}")
        return out

    # ----------------------------------------------------------------------------- helpers
    def _models(self, params: dict[str, np.ndarray], batch: int) -> list:
        """One model per env: the shared default, or slot copies holding each env's params."""
        if not params:
            return [self.model] * batch
        while len(self.slot_models) < batch:
            self.slot_models.append(copy.copy(self.model))
        # Fields an earlier task family changed but this one does not go back to the default.
        identity = {n: None for n in self.slot_params if n not in params}
        for name, value in {**params, **identity}.items():
            default = getattr(self.model, name)
            if value is None:
                value = np.broadcast_to(
                    np.stack([np.ones(default.shape), np.zeros(default.shape)]),
                    (batch, 2) + default.shape,
                ).astype(np.float32)
            value = value.reshape((batch, 2) + default.shape)  # [scale, offset] per env
            cached = self.slot_params.get(name)
            if cached is None or cached.shape[0] < batch:
                grown = np.full((len(self.slot_models),) + value.shape[1:], np.nan, np.float32)
                if cached is not None:
                    grown[: cached.shape[0]] = cached
                self.slot_params[name] = cached = grown
            diff = np.any((cached[:batch] != value).reshape(batch, -1), axis=1)
            for i in np.flatnonzero(diff):
                # float64 default * scale + offset: scale 1, offset 0 is the default exactly.
                getattr(self.slot_models[i], name)[...] = default * value[i, 0] + value[i, 1]
            cached[:batch][diff] = value[diff]
        return self.slot_models[:batch]

    def _reset_rows(self, rows: np.ndarray, which: np.ndarray, noise: np.ndarray) -> None:
        """Gymnasium's reset state: time 0, qpos0 + noise, qvel0 + noise, act 0, no warm start."""
        nq, nv = self.nq, self.nv
        rows[which] = 0.0
        rows[which, 1 : 1 + nq] = self.init_qpos + noise[which, :nq].astype(np.float64)
        rows[which, 1 + nq : 1 + nq + nv] = self.init_qvel + noise[which, nq:].astype(np.float64)

    def _track_point(self, m, d) -> np.ndarray:
        if self.robot.track == "body":
            return d.xpos[self.robot.track_body, :2]
        # Gymnasium v5's mass_center, in the same operation order (bitwise equal).
        mass = np.expand_dims(m.body_mass, axis=1)
        return (np.sum(mass * d.xipos, axis=0) / np.sum(mass))[0:2]

    def _parallel(self, batch: int, work) -> None:
        """Run ``work(data, indices)`` on every thread, each with its own scratch ``MjData``.

        The threads share one iterator over the env indices (``next`` on it is atomic under the
        GIL), so a thread that draws cheap envs (fewer contacts) takes more of them.
        """
        indices = iter(range(batch))
        nworker = min(self.num_threads, batch)
        futures = [self.pool.submit(work, self.datas[k], indices) for k in range(1, nworker)]
        work(self.datas[0], indices)  # the calling thread works too
        for f in futures:
            f.result()

    def _run_kernel(self, mode, models, rows, out, ctrl, pending, extras_flat):
        """Run the C worker on every thread (ctypes releases the GIL for the call)."""
        batch = rows.shape[0]
        shared = models[0] is self.model and models[-1] is self.model
        if shared:
            if self._shared_ptrs.shape[0] != batch:  # cached: this runs every control step
                self._shared_ptrs = np.full(batch, self.model._address, np.uint64)
                self._shared_mass = np.full(batch, self.total_mass)
            ptrs, masses = self._shared_ptrs, self._shared_mass
        else:
            ptrs = np.array([m._address for m in models], np.uint64)
            if self.robot.track == "com":
                masses = np.array([np.sum(m.body_mass) for m in models])  # per-task masses
            else:
                masses = np.full(batch, self.total_mass)
        counter = np.zeros(1, np.int64)
        robot = self.robot
        p = lambda a: a.ctypes.data  # noqa: E731
        ctrl = np.ascontiguousarray(ctrl, np.float64)
        pending = np.ascontiguousarray(pending, np.uint8)
        args = (mode, batch, p(ptrs), None, p(counter), p(rows), p(out), p(ctrl), p(pending),
                p(masses), self.spec, self.ns, robot.frame_skip, int(robot.needs_rne),
                _TRACK_CODES[robot.track], robot.track_body, len(self.extra_codes),
                p(self.extra_codes), p(extras_flat), extras_flat.shape[1])  # fmt: skip

        def work(d, _indices):
            self.kernel(*args[:3], d._address, *args[4:])

        self._parallel(batch, work)

    # ------------------------------------------------------------------------------ calls
    def step(self, words, inputs, params):
        """Host side of ``step``: ``inputs`` packs ``[ctrl, reset noise, pending]`` (float32);
        arrays carry arbitrary (identical) leading batch dims."""
        lead = inputs.shape[:-1]
        batch = math.prod(lead)
        ns, robot, nu = self.ns, self.robot, self.nu
        inputs = np.asarray(inputs).reshape(batch, -1)
        ctrl = inputs[:, :nu].astype(np.float64)
        pending = inputs[:, -1] > 0.5
        any_pending = bool(pending.any())
        # Pending rows are rewritten below (reset state, tracked point): copy only then.
        rows = np.array(words, np.uint32, copy=True if any_pending else None, order="C")
        rows = rows.reshape(batch, -1).view(np.float64)
        params = {k: np.asarray(v).reshape(batch, -1) for k, v in params.items()}
        if any_pending:
            self._reset_rows(rows, pending, inputs[:, nu:-1])
            if robot.track == "root_x":
                rows[pending, ns] = rows[pending, 1]
        out = np.empty_like(rows)
        extras = np.empty((batch, self.extras_size))
        with self.lock:
            models = self._models(params, batch)
            if self.kernel is not None:
                self._run_kernel(0, models, rows, out, ctrl, pending, extras)
            else:
                self._python_loop(0, models, rows, out, ctrl, pending, extras)
        if robot.track == "root_x":
            out[:, ns] = out[:, 1]
            out[:, ns + 1] = 0.0
        delta = out[:, ns:] - rows[:, ns:]  # float64 difference, then cast
        return self._pack(lead, out, delta, extras)

    def reset(self, noise, params):
        """Host side of an eager reset (``mj_forward`` now; for forward-dependent observations)."""
        lead = noise.shape[:-1]
        batch = math.prod(lead)
        ns = self.ns
        rows = np.zeros((batch, ns + 2))
        self._reset_rows(rows, np.ones(batch, bool), np.asarray(noise).reshape(batch, -1))
        params = {k: np.asarray(v).reshape(batch, -1) for k, v in params.items()}
        out = np.empty_like(rows)
        extras = np.empty((batch, self.extras_size))
        ctrl = np.zeros((batch, self.nu))
        pending = np.ones(batch, bool)
        with self.lock:
            models = self._models(params, batch)
            if self.kernel is not None:
                self._run_kernel(1, models, rows, out, ctrl, pending, extras)
            else:
                self._python_loop(1, models, rows, out, ctrl, pending, extras)
        if self.robot.track == "root_x":
            out[:, ns] = out[:, 1]
            out[:, ns + 1] = 0.0
        return self._pack(lead, out, np.zeros((batch, 2)), extras)

    def _python_loop(self, mode, models, rows, out, ctrl, pending, extras):
        """The C worker's loop in Python (fallback; same semantics, see _native_kernel.c)."""
        mj, ns, spec = self.mj, self.ns, self.spec
        nstep, rne = self.robot.frame_skip, self.robot.needs_rne
        tracked = self.robot.track != "root_x"
        # Per-env row views and Python bools, made once: the loop below is the per-env cost.
        in_rows, out_rows, ctrls = list(rows[:, :ns]), list(out[:, :ns]), list(ctrl)
        pend = pending.tolist()
        names = self.robot.extras
        sizes = [math.prod(extra_shape(self.robot, n)) for n in names]

        def copy_extras(d, i, zero_cfrc):
            at = 0
            for name, size in zip(names, sizes, strict=True):
                if name == "cfrc_ext" and zero_cfrc:
                    extras[i, at : at + size] = 0.0  # Gymnasium's reset never computes it
                else:
                    extras[i, at : at + size] = getattr(d, name).ravel()
                at += size

        def work(d, indices):
            d_ctrl = d.ctrl
            for i in indices:
                m = models[i]
                mj.mj_setState(m, d, in_rows[i], spec)
                if mode == 1 or pend[i]:
                    d_ctrl[:] = 0.0  # Gymnasium's reset runs mj_forward on zeroed controls
                    mj.mj_forward(m, d)
                    if tracked:
                        rows[i, ns:] = self._track_point(m, d)
                    if mode == 1:
                        mj.mj_getState(m, d, out_rows[i], spec)  # keeps the new warm start
                        out[i, ns:] = rows[i, ns:]
                        copy_extras(d, i, True)
                        continue
                d_ctrl[:] = ctrls[i]
                mj.mj_step(m, d, nstep)
                if rne:
                    mj.mj_rnePostConstraint(m, d)  # cfrc_ext, as Gymnasium computes it
                mj.mj_getState(m, d, out_rows[i], spec)
                if tracked:
                    out[i, ns:] = self._track_point(m, d)
                copy_extras(d, i, False)

        self._parallel(len(models), work)

    def _pack(self, lead, rows, delta, extras):
        """``(words, floats)``; floats = ``[qpos, qvel, track_pos, track_delta, *extras]``
        (one output array: each extra callback output costs ~10 us per call)."""
        floats = np.concatenate(
            [rows[:, 1 : 1 + self.nq + self.nv], rows[:, self.ns :], delta, extras],
            axis=1,
            dtype=np.float32,
        )
        return rows.view(np.uint32).reshape(lead + (-1,)), floats.reshape(lead + (-1,))


_HOSTS: dict[tuple[str, int], NativeBatch] = {}
_HOSTS_LOCK = threading.Lock()


def get_host(robot: RobotSpec, num_threads: int = 0) -> NativeBatch:
    """The process-wide ``NativeBatch`` for ``robot`` (created on first use)."""
    key = (robot.name, num_threads or default_num_threads())
    with _HOSTS_LOCK:
        if key not in _HOSTS:
            _HOSTS[key] = NativeBatch(robot, key[1])
        return _HOSTS[key]


def _num_floats(robot: RobotSpec) -> int:
    c = model_constants(robot.name)
    return c["nq"] + c["nv"] + 4 + sum(math.prod(extra_shape(robot, n)) for n in robot.extras)


def _result_shapes(robot: RobotSpec):
    return (
        jax.ShapeDtypeStruct((2 * (state_size(robot) + 2),), jnp.uint32),
        jax.ShapeDtypeStruct((_num_floats(robot),), jnp.float32),
    )


def _unpack(robot: RobotSpec, floats: jax.Array) -> Readout:
    """Split the host's packed float32 output into a ``Readout`` (static slices)."""
    c = model_constants(robot.name)
    nq, nv = c["nq"], c["nv"]
    extras, at = {}, nq + nv + 4
    for name in robot.extras:
        shape = extra_shape(robot, name)
        extras[name] = floats[at : at + math.prod(shape)].reshape(shape)
        at += math.prod(shape)
    return Readout(
        qpos=floats[:nq],
        qvel=floats[nq : nq + nv],
        track_pos=floats[nq + nv : nq + nv + 2],
        track_delta=floats[nq + nv + 2 : nq + nv + 4],
        extras=extras,
    )


def _ffi_call(robot, num_threads, mode, words, inputs, params):
    """The FFI custom call (``_native_ffi.cc``); same outputs as the host callbacks.

    Per env: ``words`` (2 (ns + 2),) uint32, ``inputs`` (nu + nq + nv + 1,) float32
    ``[ctrl, reset noise, pending]``, ``params`` ``{field: (2,) + field_shape}``, packed here in
    ``PARAM_FIELDS`` order as one (P,) float32 vector (``[scale, offset]`` per field) with a bit
    mask of the fields present. Returns ``(words, floats)`` as ``_result_shapes``.
    """
    packed, mask = [], 0
    for bit, name in enumerate(PARAM_FIELDS):
        if name in params:
            packed.append(jnp.asarray(params[name], jnp.float32).reshape(-1))
            mask |= 1 << bit
    packed = jnp.concatenate(packed) if packed else jnp.zeros((0,), jnp.float32)
    host = get_host(robot, num_threads)
    call = jax.ffi.ffi_call(FFI_TARGET, _result_shapes(robot), vmap_method="broadcast_all")
    return call(
        words, inputs, packed, host=np.int64(host.ffi_id), mode=np.int32(mode),
        param_mask=np.int32(mask),
    )  # fmt: skip


def _host_step(robot, num_threads, words, inputs, params):
    return get_host(robot, num_threads).step(words, inputs, params)


def _host_reset(robot, num_threads, noise, params):
    return get_host(robot, num_threads).reset(noise, params)


def reset(
    robot: RobotSpec, noise: jax.Array, params: PhysicsParams, num_threads: int = 0
) -> tuple[NativeState, Readout]:
    """Native reset of one env (vmap for batches); see ``physics.core.physics_reset``."""
    c = model_constants(robot.name)
    nq = c["nq"]
    noise = jnp.asarray(noise, jnp.float32)
    if robot.reset_needs_forward:
        if use_ffi():  # mode 1: the step's inputs with zero controls, pending, words unused
            zero_ctrl, pending = jnp.zeros((c["nu"],), jnp.float32), jnp.ones((1,), jnp.float32)
            inputs = jnp.concatenate([zero_ctrl, noise, pending])
            words0 = jnp.zeros((2 * (state_size(robot) + 2),), jnp.uint32)
            words, floats = _ffi_call(robot, num_threads, 1, words0, inputs, params)
        else:
            words, floats = jax.pure_callback(
                functools.partial(_host_reset, robot, num_threads),
                _result_shapes(robot),
                noise,
                params,
                vmap_method="broadcast_all",
            )
        state = NativeState(words=words, pending=jnp.bool_(False), noise=noise)
        return state, _unpack(robot, floats)
    # Lazy reset: everything the reset observation needs is known without a forward pass.
    qpos = jnp.asarray(c["init_qpos"], jnp.float32) + noise[:nq]
    qvel = jnp.asarray(c["init_qvel"], jnp.float32) + noise[nq:]
    if robot.track == "root_x":
        tpos = jnp.stack([qpos[0], jnp.float32(0.0)])
    else:  # "body": a free-joint root body, whose xpos is qpos[0:3] after mj_forward
        _check_free_root(robot)
        tpos = qpos[:2]
    extras = {n: jnp.zeros(extra_shape(robot, n), jnp.float32) for n in robot.extras}
    state = NativeState(
        words=jnp.zeros((2 * (state_size(robot) + 2),), jnp.uint32),
        pending=jnp.bool_(True),
        noise=noise,
    )
    return state, Readout(qpos, qvel, tpos, jnp.zeros((2,), jnp.float32), extras)


@functools.cache
def _check_free_root(robot: RobotSpec) -> None:
    mj = require_mujoco()
    m = load_model(robot.name)
    jnt = m.body_jntadr[robot.track_body]
    if jnt < 0 or m.jnt_type[jnt] != mj.mjtJoint.mjJNT_FREE or m.jnt_qposadr[jnt] != 0:
        raise ValueError(f"{robot.name}: lazy reset needs body {robot.track_body} on a free joint")


def step(
    robot: RobotSpec,
    state: NativeState,
    ctrl: jax.Array,
    params: PhysicsParams,
    num_threads: int = 0,
) -> tuple[NativeState, Readout]:
    """Native step of one env (vmap for batches); see ``physics.core.physics_step``."""
    inputs = jnp.concatenate(
        [jnp.asarray(ctrl, jnp.float32), state.noise, state.pending[None].astype(jnp.float32)]
    )
    if use_ffi():
        words, floats = _ffi_call(robot, num_threads, 0, state.words, inputs, params)
    else:
        words, floats = jax.pure_callback(
            functools.partial(_host_step, robot, num_threads),
            _result_shapes(robot),
            state.words,
            inputs,
            params,
            vmap_method="broadcast_all",
        )
    new_state = NativeState(words=words, pending=jnp.zeros_like(state.pending), noise=state.noise)
    return new_state, _unpack(robot, floats)
