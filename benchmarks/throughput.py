"""Environment throughput: env steps per second for every task family, random policy.

One *env step* = one uniformly random action and one ``step_auto_reset`` (adaptrl.rollout.trial)
for one environment, auto-resetting in the same task when an episode ends. ``N`` environments run
in parallel as a vmap inside one jitted ``jax.lax.scan``; every env has its own training task
(``jax.vmap(benchmark.sample_train_task)``). Each scan step draws all ``N`` actions in one call
and splits one key per env for the env's own randomness. The latest ``TimeStep`` (observation,
reward, flags) is carried through the scan so that XLA cannot drop the observation computation.
Timing starts after a warm-up call that compiles and runs once, blocks on the results, and keeps
the best (and median) of several repeats.

Usage::

    .venv/bin/python benchmarks/throughput.py            # full table -> docs/results/throughput.md
    .venv/bin/python benchmarks/throughput.py --quick    # tiny smoke run, writes nothing
    .venv/bin/python benchmarks/throughput.py --prng threefry2x32 unsafe_rbg
    .venv/bin/python benchmarks/throughput.py --mujoco   # MuJoCo section -> docs/results/mujoco.md
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

import adaptrl
from adaptrl.envs.base import Discrete, Environment
from adaptrl.rollout.trial import step_auto_reset

sys.path.insert(0, str(Path(__file__).parent))
from _report import cpu_model  # noqa: E402

# One representative name per registered family.
FAMILIES = (
    "bandit-k5-n10",
    "tabular-mdp-n10",
    "point-nav",
    "point-nav-sparse",
    "grid-varibad",
    "grid-nav2d",
    "sign-grid",
)
NUM_ENVS = (1, 64, 4096)
TARGET_FAMILIES = ("bandit-k5-n10", "point-nav", "point-nav-sparse")  # >= 5M steps/s at 4096
TARGET_STEPS_PER_S = 5e6
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "throughput.md"


def scan_length(num_envs: int, quick: bool) -> int:
    """Scan steps per timed call: about 2M env steps at large N, enough iterations at small N."""
    if quick:
        return 16
    return max(250, 2_000_000 // num_envs) if num_envs > 1 else 50_000


def random_actions(env: Environment, key: jax.Array, num_envs: int) -> jax.Array:
    """Uniformly random actions for ``num_envs`` envs in one call (flat draw, then reshaped)."""
    space = env.action_space
    if isinstance(space, Discrete):
        return jax.random.randint(key, (num_envs,), 0, space.n, dtype=jnp.int32)
    size = num_envs
    for d in space.shape:
        size *= d
    flat = jax.random.uniform(key, (size,), jnp.float32, space.low, space.high)
    return flat.reshape((num_envs,) + tuple(space.shape))


def make_runner(env: Environment, num_envs: int, num_steps: int):
    """Jitted ``run(key, tasks) -> (env_states, last_timestep)`` for ``num_envs`` envs."""
    vstep = jax.vmap(functools.partial(step_auto_reset, env))

    def run(key, tasks):
        k_reset, k_loop = jax.random.split(key)
        states, ts = jax.vmap(env.reset)(jax.random.split(k_reset, num_envs), tasks)

        def body(carry, _):
            states, _, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            actions = random_actions(env, k_act, num_envs)
            states, ts, _ = vstep(jax.random.split(k_env, num_envs), states, actions, tasks)
            return (states, ts, key), None

        (states, ts, _), _ = jax.lax.scan(body, (states, ts, k_loop), None, length=num_steps)
        return states, ts

    return jax.jit(run)


def measure(
    name: str, num_envs: int, *, quick: bool, repeats: int, prng: str, num_steps: int | None = None
) -> dict[str, float]:
    """Env steps per second of ``name`` at ``num_envs`` parallel envs (``num_steps`` scan steps
    per timed call; default ``scan_length``)."""
    bench = adaptrl.make(name, num_test_tasks=1)  # the held-out set plays no part here
    env = bench.env
    num_steps = num_steps or scan_length(num_envs, quick)
    task_keys = jax.random.split(jax.random.key(0, impl=prng), num_envs)
    tasks = jax.jit(jax.vmap(bench.sample_train_task))(task_keys)
    run = make_runner(env, num_envs, num_steps)
    key = jax.random.key(1, impl=prng)

    t0 = time.perf_counter()
    jax.block_until_ready(run(key, tasks))  # compile + one run
    warmup_s = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        k = jax.random.fold_in(key, i + 1)
        t0 = time.perf_counter()
        jax.block_until_ready(run(k, tasks))
        times.append(time.perf_counter() - t0)
    steps = num_envs * num_steps
    return {
        "best": steps / min(times),
        "median": steps / statistics.median(times),
        "scan_steps": num_steps,
        "warmup_s": warmup_s,
    }


def machine_info() -> dict[str, str]:
    cpu = cpu_model()
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "cpu": cpu,
        "nproc": str(len(os.sched_getaffinity(0))),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "device": ", ".join(str(d) for d in jax.devices()),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load": load,
    }


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k"


def render_table(results: dict, names: Sequence[str], num_envs: Sequence[int]) -> str:
    head = "| env | " + " | ".join(f"{n} env{'s' if n > 1 else ''}" for n in num_envs) + " |"
    lines = [head, "|---|" + "---:|" * len(num_envs)]
    for name in names:
        cells = [
            f"{fmt_rate(results[name, n]['best'])} ({fmt_rate(results[name, n]['median'])})"
            for n in num_envs
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(tables: dict[str, str], info: dict[str, str], command: str, notes: str) -> str:
    parts = [
        "# Environment throughput",
        "",
        "Env steps per second with a uniformly random policy: `N` envs (one training task each) "
        "vmapped inside one jitted `jax.lax.scan` of `step_auto_reset`, actions drawn inside the "
        "scan. Cells: best of the timed repeats (median in parentheses), after a warm-up compile; "
        "M = million, k = thousand steps/s.",
        "",
        f"- Machine: {info['cpu']}, `nproc` = {info['nproc']} ({info['platform']})",
        f"- JAX {info['jax']} on {info['device']}; Python {info['python']}",
        f"- Date: {info['date']}; load average at start: {info['load']}",
        f"- Command: `{command}`",
        "",
    ]
    for prng, table in tables.items():
        parts += [f"## PRNG `{prng}`", "", table, ""]
    parts += ["## Notes", "", notes, ""]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ MuJoCo
# Jitted rollouts of the MuJoCo families (native backend) next to the two references measured in
# the same run: a plain Python loop over Gymnasium's env, and raw `mujoco.mj_step` (one thread,
# and one thread per core, each with its own MjData). All use uniformly random actions and
# episodes of MUJOCO_HORIZON steps (the families' length), so the states visited are alike.
MUJOCO_FAMILIES = {"cheetah-vel": ("half_cheetah", "HalfCheetah-v5"), "ant-dir": ("ant", "Ant-v5")}
MUJOCO_NUM_ENVS = (1, 16, 64)
MUJOCO_HORIZON = 200
MUJOCO_TARGET = 0.9  # of the raw rate over all cores (HalfCheetah, largest batch)
DEFAULT_MUJOCO_OUTPUT = DEFAULT_OUTPUT.with_name("mujoco.md")


def mujoco_scan_length(num_envs: int, quick: bool) -> int:
    """About 40k env steps per timed call (~1 s); at least one full episode per env."""
    return 16 if quick else max(MUJOCO_HORIZON, 40_000 // num_envs)


def raw_mujoco_rate(robot: str, steps: int, threads: int) -> float:
    """Env steps/s of bare `mj_step(m, d, nstep=frame_skip)` loops, `threads` in parallel."""
    import threading

    import mujoco
    import numpy as np

    from adaptrl.physics.robots import get_robot, load_model

    spec = get_robot(robot)
    m = load_model(robot)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (MUJOCO_HORIZON, m.nu))

    def loop():
        d = mujoco.MjData(m)
        for i in range(steps):
            t = i % MUJOCO_HORIZON
            if t == 0:
                mujoco.mj_resetData(m, d)
                mujoco.mj_forward(m, d)
            d.ctrl[:] = actions[t]
            mujoco.mj_step(m, d, spec.frame_skip)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * steps / (time.perf_counter() - t0)


def gymnasium_rate(gym_id: str, steps: int) -> float:
    """Env steps/s of a plain Python loop over `gymnasium.make(gym_id)` with random actions."""
    import gymnasium

    env = gymnasium.make(gym_id, max_episode_steps=MUJOCO_HORIZON)
    env.action_space.seed(0)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t0)


def run_mujoco(args, info) -> dict:
    import mujoco

    nthreads = int(info["nproc"])
    num_envs = args.num_envs or ([4] if args.quick else list(MUJOCO_NUM_ENVS))
    repeats = args.repeats or (1 if args.quick else 3)
    ref_steps = 400 if args.quick else 20_000
    results = {}
    t_start = time.perf_counter()
    for name, (robot, gym_id) in MUJOCO_FAMILIES.items():
        row = {"raw1": [], "rawN": [], "gym": []}
        for _ in range(repeats):  # references interleaved with nothing else running
            row["raw1"].append(raw_mujoco_rate(robot, ref_steps, 1))
            row["rawN"].append(raw_mujoco_rate(robot, ref_steps, nthreads))
            row["gym"].append(gymnasium_rate(gym_id, ref_steps))
        for key in ("raw1", "rawN", "gym"):
            row[key] = max(row[key])
        for n in num_envs:
            steps = mujoco_scan_length(n, args.quick)
            r = measure(
                name, n, quick=args.quick, repeats=repeats, prng=args.prng[0], num_steps=steps
            )
            row[n] = r
            print(
                f"[mujoco] {name:12s} N={n:3d}: {fmt_rate(r['best']):>6s} steps/s best, "
                f"{fmt_rate(r['median']):>6s} median (warm-up {r['warmup_s']:.1f}s)",
                flush=True,
            )
        print(
            f"[mujoco] {name:12s} raw mj_step 1 thread {fmt_rate(row['raw1'])}, "
            f"{nthreads} threads {fmt_rate(row['rawN'])}; gymnasium loop {fmt_rate(row['gym'])}",
            flush=True,
        )
        results[name] = row
    wall = time.perf_counter() - t_start
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"results": results, "num_envs": num_envs, "wall_s": wall, "nthreads": nthreads,
            "load_end": load_end,
            "mujoco": mujoco.__version__, "repeats": repeats, "ref_steps": ref_steps}  # fmt: skip


def render_mujoco(out: dict, info: dict, command: str) -> str:
    import gymnasium

    results, num_envs, nthreads = out["results"], out["num_envs"], out["nthreads"]
    head = "| family | " + " | ".join(f"jit {n} env{'s' if n > 1 else ''}" for n in num_envs)
    head += f" | raw mj_step 1 thread | raw mj_step {nthreads} threads | Gymnasium loop |"
    lines = [head, "|---|" + "---:|" * (len(num_envs) + 3)]
    for name, row in results.items():
        cells = [f"{fmt_rate(row[n]['best'])} ({fmt_rate(row[n]['median'])})" for n in num_envs]
        cells += [fmt_rate(row["raw1"]), fmt_rate(row["rawN"]), fmt_rate(row["gym"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    largest = max(num_envs)
    checks = []
    for name, row in results.items():
        best = row[largest]["best"]
        ratio_raw, ratio_gym = best / row["rawN"], best / row["gym"]
        verdict = "meets" if ratio_raw >= MUJOCO_TARGET else "misses"
        checks.append(
            f"- {name} at {largest} envs: {ratio_raw:.0%} of raw `mj_step` over {nthreads} "
            f"threads, {ratio_gym:.1f}x the Gymnasium loop"
            + (f" ({verdict} the {MUJOCO_TARGET:.0%} target)" if name == "cheetah-vel" else "")
        )
    busy = []
    for name, row in results.items():
        if row["rawN"] < 1.3 * row["raw1"]:
            busy.append(
                f"- Warning ({name}): raw `mj_step` on {nthreads} threads was not faster than on "
                "one, so other jobs occupied the cores during this run; ratios against the "
                f"{nthreads}-thread rate are unreliable. Re-run on a quiet machine."
            )
    fixed_cost = []
    ref = results.get("cheetah-vel")
    if ref is not None and 1 in num_envs:  # one env: a scan step is one env step plus overhead
        t1, raw_t1 = 1e6 / ref[1]["best"], 1e6 / ref["raw1"]
        fixed_cost.append(
            f"- Fixed cost, from this table (HalfCheetah): a 1-env scan step takes {t1:.0f} us "
            f"against {raw_t1:.0f} us for one raw `mj_step` call, so ~{t1 - raw_t1:.0f} us of "
            "overhead per scan step (the FFI call and the JAX work for one env; a batch of one "
            "is stepped on the calling thread alone)."
        )
        tN, physN = 1e6 * largest / ref[largest]["best"], 1e6 * largest / ref["rawN"]
        fixed_cost.append(
            f"- At {largest} envs a scan step takes {tN:.0f} us against {physN:.0f} us of raw "
            f"`mj_step` over {nthreads} threads: ~{tN - physN:.0f} us that the threads do not "
            "overlap."
        )
    return "\n".join(
        [
            "# MuJoCo throughput",
            "",
            "Env steps per second, uniformly random actions, episodes of "
            f"{MUJOCO_HORIZON} steps. *jit N envs*: `N` envs of the registered family (one "
            "training task each) vmapped inside one jitted `jax.lax.scan` of "
            "`step_auto_reset`, physics on the native backend (one XLA FFI call per scan step, "
            f"{nthreads} MuJoCo threads), observations and rewards computed in JAX; best of the "
            "timed repeats (median in parentheses). *raw mj_step*: a Python loop of "
            "`d.ctrl[:] = a; mj_step(m, d, frame_skip)` per thread, each thread with its own "
            "MjData, no observation or reward. *Gymnasium loop*: `gymnasium.make(id)` stepped "
            "in Python with `action_space.sample()`. References: best of "
            f"{out['repeats']} runs of {out['ref_steps']} steps.",
            "",
            f"- Machine: {info['cpu']}, `nproc` = {info['nproc']} ({info['platform']})",
            f"- MuJoCo {out['mujoco']}, Gymnasium {gymnasium.__version__}, JAX {info['jax']} on "
            f"{info['device']}; Python {info['python']}",
            f"- Date: {info['date']}; load average at start: {info['load']}, at end: "
            f"{out['load_end']} (the machine is shared: other jobs slow every column)",
            f"- Command: `{command}`; wall-clock {out['wall_s']:.0f} s",
            "",
            *lines,
            "",
            "## Against the targets",
            "",
            f"Target: >= {MUJOCO_TARGET:.0%} of the raw native step rate summed over the cores "
            "(HalfCheetah), i.e. >= 3x the Gymnasium loop.",
            "",
            *checks,
            *busy,
            "",
            "## Where the time goes",
            "",
            "- Per env step the native backend does what raw `mj_step` does plus `mj_setState` / "
            "`mj_getState` of the exact float64 state (warm start included), in C++ "
            "(`adaptrl/physics/_native_ffi.cc`) without Python: measured alone on one thread it "
            "runs at the raw rate or slightly above (the raw reference pays a Python call per "
            "step).",
            "- Per *scan step* (whole batch) the physics is one XLA FFI custom call: XLA hands "
            "its buffers to C++, a persistent pool of threads (the calling thread is one) steps "
            "the envs, per-task physics goes into per-slot model copies inside the call, and "
            "the packed results are written into XLA's output buffers; no Python or NumPy runs "
            "per step. Idle pool threads sleep rather than spin between calls (on 2 cores a "
            "spinning thread took a core from XLA's work between calls). The `pure_callback` "
            "path it replaces (still the fallback) paid ~130 us "
            "per scan step at 64 envs that the physics threads could not overlap: ~55 us "
            "callback round trip, ~35 us NumPy bookkeeping, ~40 us of JAX work.",
            *fixed_cost,
            "- What remains is mostly the jitted JAX work of `step_auto_reset`, which grows with "
            "the batch: auto-reset draws reset noise for every env at every step (threefry bits "
            "are its largest piece; the normal part now costs one fused pass) and keeps it only "
            "where an episode ended, plus observations, rewards and the selects; and the threads "
            "finishing their shares of the batch at slightly different times. Policy networks, "
            "not measured here, add their own JAX time per step.",
            "- Ant-v5 integrates with RK4 (four forward passes per substep), so its physics "
            "dominates and the fixed costs matter less.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test), no file")
    parser.add_argument("--envs", nargs="+", default=list(FAMILIES), help="registered names")
    parser.add_argument("--num-envs", nargs="+", type=int, default=None, help="parallel envs")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per cell")
    parser.add_argument(
        "--prng",
        nargs="+",
        default=["threefry2x32"],
        choices=["threefry2x32", "rbg", "unsafe_rbg"],
        help="key implementation(s); threefry2x32 is JAX's default",
    )
    parser.add_argument("--output", type=Path, default=None, help="markdown file to write")
    parser.add_argument(
        "--mujoco",
        action="store_true",
        help="MuJoCo section instead (native physics vs raw mj_step and Gymnasium) -> mujoco.md",
    )
    args = parser.parse_args(argv)
    if args.mujoco:
        info = machine_info()
        print(f"{info['cpu']} (nproc={info['nproc']}), jax {info['jax']}, load {info['load']}")
        out = run_mujoco(args, info)
        output = args.output or (None if args.quick else DEFAULT_MUJOCO_OUTPUT)
        if output is not None:
            command = "python benchmarks/throughput.py " + " ".join(
                sys.argv[1:] if argv is None else argv
            )
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(render_mujoco(out, info, command.strip()))
            print(f"wrote {output}")
        return out

    num_envs = args.num_envs or ([4] if args.quick else list(NUM_ENVS))
    repeats = args.repeats or (1 if args.quick else 5)
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    info = machine_info()
    print(f"{info['cpu']} (nproc={info['nproc']}), jax {info['jax']}, load {info['load']}")

    all_results, tables = {}, {}
    for prng in args.prng:
        results = {}
        for name in args.envs:
            for n in num_envs:
                r = measure(name, n, quick=args.quick, repeats=repeats, prng=prng)
                results[name, n] = r
                print(
                    f"[{prng}] {name:18s} N={n:5d}: {fmt_rate(r['best']):>8s} steps/s best, "
                    f"{fmt_rate(r['median']):>8s} median (scan {r['scan_steps']}, "
                    f"warm-up {r['warmup_s']:.1f}s)",
                    flush=True,
                )
        tables[prng] = render_table(results, args.envs, num_envs)
        all_results[prng] = results
        print(f"\nPRNG {prng}\n{tables[prng]}\n")

    largest = max(num_envs)
    checks = []
    for name in TARGET_FAMILIES:
        if name in args.envs and largest == 4096:
            best = all_results[args.prng[0]][name, largest]["best"]
            verdict = "meets" if best >= TARGET_STEPS_PER_S else "misses"
            checks.append(f"{name} at {largest} envs: {fmt_rate(best)} steps/s ({verdict} 5M)")
    notes = "\n".join(
        [
            "- Target: >= 5M steps/s for bandits and 2D navigation at 4096 envs on the 2-core CPU.",
            *[f"- {c}." for c in checks],
            "- One env step includes the random action, the env step, the (selected) reset in "
            "the same task, and the per-env key split; no policy network.",
            "- `threefry2x32` is JAX's default and what the library and its tests use. "
            "`--prng rbg unsafe_rbg` changes the cost of key splits and random draws (faster "
            "for some families, slower for others); those streams differ between vmapped and "
            "unbatched code.",
            "- The machine is shared; the median is sensitive to other jobs, the best much less.",
        ]
    )
    if output is not None:
        command = "python benchmarks/throughput.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_markdown(tables, info, command.strip(), notes))
        print(f"wrote {output}")
    return all_results


if __name__ == "__main__":
    main()
