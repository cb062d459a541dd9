"""Command line: ``adaptrl {train,eval,plot,list} ...``.

    adaptrl list                                   environments and algorithms
    adaptrl train ALGO --env NAME [options]        meta-train, checkpoint, meta-test
    adaptrl train ALGO --help                      every option of the run and of ALGO
    adaptrl eval RUN_DIR [--seeds N] [--out DIR]   meta-test a run's newest checkpoint
                 [--set FIELD=VALUE ...]         (with changed meta-test settings)
    adaptrl plot RUN_DIR... [--out FILE]           adaptation (and training) curves of several runs

Errors in what the user asked for (unknown names, invalid values, a run directory that already
holds a run, a corrupt checkpoint) print one line starting with ``adaptrl: error:`` and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Annotated

USAGE = __doc__


def _cmd_list(argv: list[str]) -> int:
    from adaptrl.algos import list_algorithms
    from adaptrl.envs.registry import list_envs

    print("Environments (adaptrl.make(NAME)):")
    for name, desc in list_envs().items():
        print(f"  {name:20s} {desc}")
    print("\nAlgorithms (adaptrl train NAME):")
    for name, desc in list_algorithms().items():
        print(f"  {name:20s} {desc}")
    return 0


def _cmd_train(argv: list[str]) -> int:
    import tyro

    from adaptrl.algos import get_algorithm
    from adaptrl.train import RunConfig, train

    if not argv or argv[0].startswith("-"):
        from adaptrl.algos import list_algorithms

        raise ValueError(
            "usage: adaptrl train ALGO [--env NAME] [options]; ALGO is one of: "
            + ", ".join(list_algorithms())
        )
    algo, rest = argv[0], argv[1:]
    spec = get_algorithm(algo)

    # Built at run time (real types, not string annotations) so tyro sees the algorithm's config:
    # run options are flat (--env), algorithm options are prefixed (--rl2.hidden-size).
    TrainCommand = dataclasses.make_dataclass(
        "TrainCommand",
        [
            ("run", Annotated[RunConfig, tyro.conf.arg(name="")], dataclasses.field(
                default_factory=RunConfig)),
            ("algo", Annotated[spec.config_cls, tyro.conf.arg(name=algo)], dataclasses.field(
                default_factory=spec.config_cls)),
        ],
        frozen=True,
    )
    TrainCommand.__doc__ = f"Meta-train {algo} ({spec.description}) and meta-test it."
    cmd = tyro.cli(TrainCommand, args=rest, prog=f"adaptrl train {algo}")
    try:
        run_dir = train(algo, cmd.run, cmd.algo)
    except KeyboardInterrupt:
        return 130
    print(f"adaptrl: run directory {run_dir}")
    return 0


def _cmd_eval(argv: list[str]) -> int:
    from adaptrl.envs.registry import make
    from adaptrl.train import evaluate, load_run_config
    from adaptrl.utils.overrides import parse_overrides

    p = argparse.ArgumentParser(prog="adaptrl eval", description="Meta-test a run directory.")
    p.add_argument("run_dir", nargs="?", help="directory written by `adaptrl train`")
    p.add_argument("--seeds", type=int, default=None, help="evaluation seeds per trained agent")
    p.add_argument("--out", default=None, help="output directory (default RUN_DIR/results; "
                   "RUN_DIR/results-FIELD-VALUE...[-seeds-N] with --set or a --seeds other than "
                   "the run's)")  # fmt: skip
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="change fields of the algorithm's config for this meta-test only, e.g. "
                   "RUN_DIR --set eval_samples=4000 later_inner_lr=0.075 (or repeat --set; "
                   "fields that change the network's shape cannot load the checkpoint)",
                   )  # fmt: skip
    a = p.parse_args(argv)
    if a.run_dir is None:  # `--set A=1 RUN_DIR`: the list option took the run directory too
        if a.set and "=" not in a.set[-1]:
            a.run_dir = a.set.pop()
        else:
            p.error("the run directory is required: adaptrl eval RUN_DIR [--set FIELD=VALUE ...]")
    if a.seeds is not None and a.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {a.seeds}")
    spec, run, config = load_run_config(a.run_dir)
    overrides = parse_overrides(a.set, type(config)) if a.set else {}
    if overrides:
        config = dataclasses.replace(config, **overrides)
        if hasattr(config, "validate"):
            config.validate()
    # Never overwrite the run's own meta-test results (RUN_DIR/results, written by training)
    # with a different meta-test: other fields or seeds go to a directory named after them.
    tags = [f"{k}-{v}" for k, v in overrides.items()]
    tags += [] if a.seeds in (None, run.eval_seeds) else [f"seeds-{a.seeds}"]
    out = a.out
    if out is None and tags:
        out = str(Path(a.run_dir) / ("results-" + "-".join(tags).replace(" ", "")))
    evaluate(a.run_dir, spec=spec, benchmark=make(run.env, split_seed=run.split_seed), run=run,
             algo_config=config, out_dir=out, eval_seeds=a.seeds)  # fmt: skip
    return 0


def _cmd_plot(argv: list[str]) -> int:
    from adaptrl.eval.report import load_results, plot_curves, plot_training
    from adaptrl.utils.logging import METRICS_CSV, read_metrics

    p = argparse.ArgumentParser(prog="adaptrl plot", description="Plot adaptation curves.")
    p.add_argument("run_dirs", nargs="+", help="run directories (or meta_test.json files)")
    p.add_argument("--out", default="adaptation_curves.png",
                   help="image to write; the suffix picks the format (.png, .pdf, .svg)")
    a = p.parse_args(argv)
    results, training = [], []
    for d in a.run_dirs:
        path = Path(d)
        results += load_results(path / "results" if (path / "results").is_dir() else path)
        if (path / METRICS_CSV).exists():
            training.append((path.name, read_metrics(path)))
    plot_curves(results, a.out)
    print(f"adaptrl: wrote {a.out} ({len(results)} adaptation curves)")
    out = Path(a.out)
    training_out = out.with_name(out.stem + "_training" + out.suffix)
    if training and plot_training(training, training_out):
        print(f"adaptrl: wrote {training_out} ({len(training)} training curves)")
    return 0


COMMANDS = {"list": _cmd_list, "train": _cmd_train, "eval": _cmd_eval, "plot": _cmd_plot}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("--version", "version"):
        from adaptrl import __version__

        print(__version__)
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"adaptrl: error: unknown command {argv[0]!r}; use one of "
              f"{', '.join(COMMANDS)} (adaptrl --help)", file=sys.stderr)  # fmt: skip
        return 2
    from adaptrl.utils.checkpoint import CheckpointError

    try:
        return command(argv[1:])
    except (ValueError, OSError, CheckpointError) as e:  # OSError: missing/existing/unwritable
        print(f"adaptrl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # `train` saves a checkpoint first; eval/plot write atomically
        print("adaptrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
