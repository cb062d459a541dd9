"""The one training loop: meta-train, checkpoint, resume, then meta-test on held-out tasks.

A run directory holds everything a run wrote::

    config.json              algorithm, run config and algorithm config (the run's identity)
    metrics.csv              one row per logged iteration
    tensorboard/             the same scalars as TensorBoard events
    checkpoints/ckpt_*.adaptrl  atomic, checksummed training state (newest 3 kept)
    results/                 meta_test.{json,csv,md} and adaptation_curve.png

Resuming (``--resume``) continues from the newest valid checkpoint and produces exactly the
metrics an uninterrupted run would have: the PRNG key is part of the checkpointed state. Ctrl-C
saves a checkpoint of the last completed iteration before exiting.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from adaptrl.algos import AlgorithmSpec, get_algorithm
from adaptrl.envs.registry import make
from adaptrl.eval.protocol import MetaTestResult, meta_test
from adaptrl.eval.report import plot_training, write_results
from adaptrl.tasks.benchmark import Benchmark
from adaptrl.tasks.distribution import tree_index
from adaptrl.utils.checkpoint import (
    CheckpointError,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from adaptrl.utils.io import atomic_write_text
from adaptrl.utils.logging import METRICS_CSV, MetricLogger, read_metrics

CONFIG_JSON = "config.json"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings shared by every algorithm.

    Attributes:
      env: registered environment name (see `adaptrl list`).
      iterations: meta-training updates (ignored by non-learning references).
      seed: base seed; training seed i uses seed + i.
      num_seeds: independent training seeds, vmapped in one process.
      run_dir: output directory (default: runs/<algo>_<env>_s<seed>).
      resume: continue the run in run_dir from its newest checkpoint.
      checkpoint_every: iterations between checkpoints (one is always written at the end).
      keep_checkpoints: newest checkpoints kept on disk; 0 keeps all (e.g. to choose the best
        iterate afterwards, as the MAML paper did).
      log_every: iterations between metric rows and progress updates.
      eval_seeds: evaluation seeds per trained agent (meta-test repeats).
      eval_episodes: episodes per meta-test trial (default: the benchmark's trial length).
      exploration_episodes: episodic variant: episodes excluded from the exploit score.
      references: also meta-test the random and oracle/task-agnostic references for comparison.
      split_seed: seed of the meta-train / meta-test task split.
      progress: show a progress bar.
    """

    env: str = "bandit-k5-n10"
    iterations: int = 500
    seed: int = 0
    num_seeds: int = 1
    run_dir: str | None = None
    resume: bool = False
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 10
    eval_seeds: int = 3
    eval_episodes: int | None = None
    exploration_episodes: int = 0
    references: bool = True
    split_seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        for name in ("num_seeds", "checkpoint_every", "log_every", "eval_seeds"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be >= 1, got {getattr(self, name)}")
        if self.iterations < 0:
            raise ValueError(f"--iterations must be >= 0, got {self.iterations}")
        if self.keep_checkpoints < 0:
            raise ValueError(f"--keep-checkpoints must be >= 0 (0 keeps all), "
                             f"got {self.keep_checkpoints}")  # fmt: skip
        if self.eval_episodes is not None and self.eval_episodes < 1:
            raise ValueError(f"--eval-episodes must be >= 1, got {self.eval_episodes}")


def default_run_dir(algo: str, run: RunConfig) -> Path:
    return Path("runs") / f"{algo}_{run.env}_s{run.seed}"


def _config_record(algo: str, run: RunConfig, algo_config: Any) -> dict:
    return {
        "algorithm": algo,
        "run": dataclasses.asdict(run),
        "algo_config": dataclasses.asdict(algo_config),
    }


# Fields that may differ between the original run and a resume of it.
_RESUMABLE_FIELDS = {
    "iterations", "resume", "progress", "eval_seeds", "eval_episodes", "references",
    "checkpoint_every", "keep_checkpoints", "log_every", "exploration_episodes",
}  # fmt: skip


def _prepare_run_dir(run_dir: Path, record: dict, resume: bool,
                     defaults: dict | None = None) -> None:  # fmt: skip
    """Create the run directory, refusing to clobber a different or existing run.

    ``defaults`` (same layout as ``record``): values of fields a saved config.json predates,
    so runs written before a field existed still resume when it is left at its default."""
    cfg_path = run_dir / CONFIG_JSON
    if cfg_path.exists():
        if not resume:
            raise FileExistsError(
                f"{run_dir} already holds a run; pass --resume to continue it, or choose another "
                "--run-dir (nothing was written)"
            )
        try:
            saved = json.loads(cfg_path.read_text())
            if not isinstance(saved, dict) or not isinstance(saved.get("run", {}), dict):
                raise ValueError("expected a JSON object as written by adaptrl train")
        except ValueError as e:  # also JSONDecodeError and UnicodeDecodeError
            raise CheckpointError(f"{cfg_path} is corrupt ({e}); cannot resume. Restore it "
                                  "from a copy, or start a new --run-dir") from e  # fmt: skip
        diffs = _config_diffs(saved, record, defaults)
        old_keep = saved.get("run", {}).get("keep_checkpoints", RunConfig.keep_checkpoints)
        new_keep = record["run"]["keep_checkpoints"]
        if old_keep == 0 and new_keep != 0 or 0 < new_keep < old_keep:
            raise ValueError(
                f"cannot resume {run_dir} with --keep-checkpoints {new_keep}: it was trained "
                f"with {old_keep} ({'all' if old_keep == 0 else old_keep} kept), and the next "
                f"save would delete older checkpoints. Pass --keep-checkpoints {old_keep}"
            )
        old_iters = saved.get("run", {}).get("iterations")
        if old_iters is not None and old_iters != record["run"]["iterations"]:
            print(f"adaptrl: note: --iterations changed from {old_iters} to "
                  f"{record['run']['iterations']}; schedules that span the run (learning-rate "
                  "annealing) are stretched from here on", file=sys.stderr)  # fmt: skip
        if diffs:
            raise ValueError(
                f"cannot resume {run_dir}: the config differs from the saved one in "
                f"{', '.join(diffs)}. Rerun with the saved values (see {cfg_path}) or use a new "
                "--run-dir"
            )
    elif run_dir.exists() and any(run_dir.iterdir()):
        # Never adopt a foreign, non-empty directory: pruning would delete its checkpoints and
        # its metrics.csv / results/ would be mixed with or overwritten by this run's.
        raise FileExistsError(f"{run_dir} is not empty and holds no adaptrl run (no "
                              f"{CONFIG_JSON}); choose another --run-dir (nothing was written)")
    elif resume:
        print(f"adaptrl: note: --resume given but {run_dir} holds no run yet; starting a new one",
              file=sys.stderr)  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    if not cfg_path.exists():
        atomic_write_text(cfg_path, json.dumps(record, indent=2, default=str))


def _config_diffs(saved: dict, new: dict, defaults: dict | None = None) -> list[str]:
    """Flags whose value differs between the saved and the new config. A field missing from
    the saved config (the run predates it) counts as its default from ``defaults``."""
    defaults = json.loads(json.dumps(defaults or {}, default=str))  # as saved: lists, strings
    missing = object()

    def saved_value(section, k):
        v = saved.get(section, {}).get(k, missing)
        return defaults.get(section, {}).get(k) if v is missing else v

    diffs = []
    if saved.get("algorithm") != new["algorithm"]:
        diffs.append("algorithm")
    for k, v in json.loads(json.dumps(new["run"], default=str)).items():
        if k not in _RESUMABLE_FIELDS and k != "run_dir" and saved_value("run", k) != v:
            diffs.append(f"--{k.replace('_', '-')}")
    algo_new = json.loads(json.dumps(new["algo_config"], default=str))
    for k, v in algo_new.items():
        if saved_value("algo_config", k) != v:
            diffs.append(f"--{new['algorithm']}.{k.replace('_', '-')}")
    return diffs


def _init_states(spec: AlgorithmSpec, benchmark: Benchmark, run: RunConfig, algo_config):
    keys = jnp.stack([jax.random.PRNGKey(run.seed + i) for i in range(run.num_seeds)])
    return jax.vmap(lambda k: spec.init(k, benchmark, algo_config, run.iterations))(keys)


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="it",
                dynamic_ncols=True, mininterval=1.0, file=sys.stderr)  # fmt: skip


def train(
    algo: str, run: RunConfig, algo_config: Any | None = None, *, stop_after: int | None = None
) -> Path:
    """Meta-train ``algo`` on ``run.env``, checkpointing, then meta-test. Returns the run dir.

    ``stop_after`` (tests) stops after that many iterations *as if interrupted*: a checkpoint is
    saved and no evaluation runs.
    """
    spec = get_algorithm(algo)
    algo_config = spec.config_cls() if algo_config is None else algo_config
    run.validate()
    if hasattr(algo_config, "validate"):
        algo_config.validate()
    benchmark = make(run.env, split_seed=run.split_seed)
    spec.check_supports(benchmark)
    run_dir = Path(run.run_dir) if run.run_dir else default_run_dir(algo, run)
    record = _config_record(algo, run, algo_config)
    defaults = {"run": dataclasses.asdict(RunConfig()),
                "algo_config": dataclasses.asdict(type(algo_config)())}  # fmt: skip
    _prepare_run_dir(run_dir, record, run.resume, defaults)
    ckpt_dir = run_dir / "checkpoints"

    state, start = None, 0
    if spec.trainable:
        state = _init_states(spec, benchmark, run, algo_config)
        if run.resume:
            state, start = _resume(ckpt_dir, state)
        state = _train_loop(spec, benchmark, run, algo_config, state, start, run_dir, record,
                            stop_after)  # fmt: skip
        if state is None:
            return run_dir
    evaluate(run_dir, spec=spec, benchmark=benchmark, run=run, algo_config=algo_config,
             state=state)  # fmt: skip
    return run_dir


def _resume(ckpt_dir: Path, template):
    """Load the newest checkpoint that verifies; corrupt ones are reported and skipped."""
    loaded = _load_newest(ckpt_dir, template, "resuming from")
    if loaded is None:
        print(f"adaptrl: no checkpoint in {ckpt_dir}; starting from iteration 0", file=sys.stderr)
        return template, 0
    return loaded


def _load_newest(ckpt_dir: Path, template, verb: str):
    """(state, iteration) of the newest checkpoint in ``ckpt_dir`` that verifies, or None when
    there is none. Corrupt ones are reported (with the iteration used instead) and skipped."""
    found = list_checkpoints(ckpt_dir)
    if not found:
        return None
    errors = []
    for it, path in reversed(found):
        try:
            _, state = load_checkpoint(path, template)
            print(f"adaptrl: {verb} {path} (iteration {it})", file=sys.stderr)
            return state, it
        except CheckpointError as e:
            errors.append(str(e))
            print(f"adaptrl: skipping {path}: {e}", file=sys.stderr)
    raise CheckpointError("no usable checkpoint: " + " | ".join(errors))


class _DeferredInterrupt:
    """Turn Ctrl-C into a request honoured between iterations.

    The iteration in flight completes (update, metrics row, progress) before the loop saves a
    checkpoint and stops, so no logged row is ever missing from a resumed run. A second Ctrl-C
    interrupts at once (nothing is saved for the iteration in flight).
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nadaptrl: stopping after this iteration (Ctrl-C again to abort now)",
              file=sys.stderr)  # fmt: skip

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _train_loop(spec, benchmark, run, algo_config, state, start, run_dir, record, stop_after):
    update = jax.jit(jax.vmap(spec.make_update(benchmark, algo_config, run.iterations)))
    steps_per_update = spec.env_steps_per_update(benchmark, algo_config) * run.num_seeds
    logger = MetricLogger(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    total = run.iterations
    bar = _progress(total, start, run.progress)
    it = start
    last_saved = start
    t0, steps_done = time.perf_counter(), 0

    def save_now():  # the current iterate (reads ``it`` and ``state`` when called)
        return save_checkpoint(ckpt_dir, it, state, config=record, keep=run.keep_checkpoints)

    with _DeferredInterrupt() as interrupt:
        while it < total:
            if stop_after is not None and it - start >= stop_after:
                save_now()
                return None
            if interrupt.requested:
                bar.close()
                path = (save_now() if it > last_saved
                        else checkpoint_path(ckpt_dir, it))  # fmt: skip
                print(f"adaptrl: interrupted; saved {path}. Continue with --resume.",
                      file=sys.stderr)  # fmt: skip
                logger.close()
                raise KeyboardInterrupt
            state, metrics = update(state)
            it += 1
            steps_done += steps_per_update
            if it % run.log_every == 0 or it == total:
                metrics = jax.device_get(metrics)
                elapsed = time.perf_counter() - t0
                row = {"env_steps": it * steps_per_update}
                for k, v in metrics.items():
                    v = np.asarray(v)
                    row[k] = float(v.mean())
                    if run.num_seeds > 1:
                        for i, vi in enumerate(v):
                            row[f"{k}/seed{i}"] = float(vi)
                logger.log(it, row)
                bar.set_postfix(
                    steps_per_s=f"{steps_done / max(elapsed, 1e-9):.3g}",
                    **{spec.headline_metric: f"{row.get(spec.headline_metric, float('nan')):.3f}"},
                )
            bar.update(1)
            if it % run.checkpoint_every == 0:
                save_now()
                last_saved = it
    bar.close()
    if it > last_saved or not list_checkpoints(ckpt_dir):
        save_now()
    logger.close()
    return state


def _reference_agents(benchmark: Benchmark, algo: str) -> list:
    from adaptrl.algos import list_algorithms

    refs = []
    for name in ("random", "oracle", "task-agnostic", "goal-search"):
        if name == algo or name not in list_algorithms():
            continue
        spec = get_algorithm(name)
        if spec.supports(benchmark):
            try:
                refs.append(spec.make_agent(None, benchmark, spec.config_cls()))
            except ValueError:
                continue  # no such reference for this family
    return refs


def evaluate(
    run_dir: str | Path,
    *,
    spec: AlgorithmSpec | None = None,
    benchmark: Benchmark | None = None,
    run: RunConfig | None = None,
    algo_config: Any | None = None,
    state: Any | None = None,
    out_dir: str | Path | None = None,
    eval_seeds: int | None = None,
) -> list[MetaTestResult]:
    """Meta-test a run (its newest checkpoint unless ``state`` is given) on held-out tasks."""
    run_dir = Path(run_dir)
    if spec is None:
        spec, run, algo_config = load_run_config(run_dir)
        benchmark = make(run.env, split_seed=run.split_seed)
    n_eval = run.eval_seeds if eval_seeds is None else eval_seeds
    if spec.trainable and state is None:
        template = _init_states(spec, benchmark, run, algo_config)
        loaded = _load_newest(run_dir / "checkpoints", template, "evaluating")
        if loaded is None:
            raise CheckpointError(f"{run_dir} has no checkpoint to evaluate; train it first")
        state, _ = loaded

    if spec.trainable:
        agents, seeds = [], []
        for i in range(run.num_seeds):
            agent = spec.make_agent(tree_index(state, i), benchmark, algo_config)
            for j in range(n_eval):
                agents.append(agent)
                seeds.append(1000 * (run.seed + i) + j)
    else:
        agents = [spec.make_agent(None, benchmark, algo_config)] * n_eval
        seeds = list(range(n_eval))
    kw = dict(num_episodes=run.eval_episodes, exploration_episodes=run.exploration_episodes)
    if spec.trainable and spec.evaluate is not None:  # the algorithm's own protocol
        trained = [tree_index(state, i) for i in range(run.num_seeds)]
        per_row = [trained[i] for i in range(run.num_seeds) for _ in range(n_eval)]
        results = [spec.evaluate(benchmark, per_row, algo_config, seeds=seeds, **kw)]
    else:
        results = [meta_test(benchmark, agents, seeds=seeds, **kw)]
    if run.references:
        for ref in _reference_agents(benchmark, spec.name):
            results.append(meta_test(benchmark, ref, seeds=list(range(n_eval)), **kw))
    out = Path(out_dir) if out_dir else run_dir / "results"
    paths = write_results(results, out)
    if (run_dir / METRICS_CSV).exists():
        curve = out / "training_curve.png"
        if plot_training([(spec.name, read_metrics(run_dir))], curve, key=spec.headline_metric):
            paths["training"] = curve
    print((out / "meta_test.md").read_text())
    print(f"adaptrl: results in {out} ({', '.join(p.name for p in paths.values())})")
    return results


def load_run_config(run_dir: str | Path):
    """(spec, RunConfig, algo config) from a run directory's config.json."""
    path = Path(run_dir) / CONFIG_JSON
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not an adaptrl run directory (no {CONFIG_JSON})")
    try:
        record = json.loads(path.read_text())
        spec = get_algorithm(record["algorithm"])
        run = RunConfig(**record["run"])
        algo_config = spec.config_cls(**_tuples(record["algo_config"]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # JSON, UTF-8, layout
        raise CheckpointError(f"{path} is corrupt or from an incompatible version ({e})") from e
    return spec, run, algo_config


def _tuples(d: dict) -> dict:
    # JSON turns tuples into lists; frozen configs want hashable tuples back.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
