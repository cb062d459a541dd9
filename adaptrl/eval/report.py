"""Write meta-test results as JSON, CSV, a Markdown table and an adaptation-curve PNG."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adaptrl.eval.protocol import MetaTestResult
from adaptrl.utils.io import atomic_write_text

RESULTS_JSON = "meta_test.json"
RESULTS_CSV = "meta_test.csv"
RESULTS_MD = "meta_test.md"
CURVE_PNG = "adaptation_curve.png"


def result_to_dict(r: MetaTestResult) -> dict:
    """Everything in ``r`` as JSON-able data, including the raw per-trial arrays."""
    return {
        "env": r.env,
        "agent": r.agent,
        "privileged": r.privileged,
        "has_adaptation_step": r.has_adaptation_step,
        "success_defined": r.success_defined,
        "seeds": r.seeds,
        "groups": r.groups,
        "exploration_episodes": r.exploration_episodes,
        "wall_clock_s": r.wall_clock_s,
        "summary": r.summary(),
        "curve": [{"mean": c.mean, "ci95": c.half_width} for c in r.curve()],
        "success_curve": [{"mean": c.mean, "ci95": c.half_width} for c in r.success_curve()],
        "returns": r.returns.tolist(),
        "success": r.success.astype(int).tolist(),
        "lengths": r.lengths.tolist(),
        "first_success_step": r.first_success_step.tolist(),
        **({} if r.episodes_used is None else {"episodes_used": r.episodes_used.tolist()}),
        **({} if r.budget_capped is None else
           {"budget_capped": r.budget_capped.astype(int).tolist()}),
    }  # fmt: skip


def result_from_dict(d: dict) -> MetaTestResult:
    return MetaTestResult(
        env=d["env"],
        agent=d["agent"],
        privileged=d["privileged"],
        has_adaptation_step=d["has_adaptation_step"],
        success_defined=d["success_defined"],
        seeds=list(d["seeds"]),
        exploration_episodes=d["exploration_episodes"],
        returns=np.asarray(d["returns"], np.float64),
        success=np.asarray(d["success"], bool),
        lengths=np.asarray(d["lengths"], np.int64),
        first_success_step=np.asarray(d["first_success_step"], np.int64),
        groups=list(d.get("groups", [])),
        wall_clock_s=d.get("wall_clock_s", 0.0),
        episodes_used=(np.asarray(d["episodes_used"], np.int64)
                       if "episodes_used" in d else None),
        budget_capped=(np.asarray(d["budget_capped"], bool)
                       if "budget_capped" in d else None),
    )  # fmt: skip


def load_results(path: str | Path) -> list[MetaTestResult]:
    """Read a ``meta_test.json`` (or a run directory containing one)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    if not path.exists():
        raise FileNotFoundError(
            f"no meta-test results at {path}; run `adaptrl eval RUN_DIR` first"
        )
    try:
        data = json.loads(path.read_text())
        results = [result_from_dict(d) for d in data["results"]]
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # JSON, UTF-8, shapes
        raise ValueError(f"{path} is not a valid adaptrl results file ({type(e).__name__}: {e});"
                         " it is written by `adaptrl train` or `adaptrl eval`") from e  # fmt: skip
    if not results:
        raise ValueError(f"{path} holds no meta-test results; rerun `adaptrl eval RUN_DIR`")
    return results


def _fmt(mean: float, ci: float) -> str:
    if math.isnan(ci):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {ci:.3f}"


def markdown_table(results: Sequence[MetaTestResult]) -> str:
    """Headline table (one row per agent) plus the per-episode adaptation curve."""
    lines = []
    keys = ["trial_return", "first_episode_return", "last_episode_return", "exploit_return"]
    if any(r.success_defined for r in results):
        keys += ["success_first_episode", "success_last_episode"]
    lines.append("| env | agent | seeds × tasks | " + " | ".join(keys) + " |")
    lines.append("|" + "---|" * (3 + len(keys)))
    for r in results:
        s = r.summary()
        cells = [_fmt(s[k]["mean"], s[k]["ci95"]) if k in s else "–" for k in keys]
        tag = f"{r.agent} (told the task)" if r.privileged else r.agent
        dims = f"{r.returns.shape[0]} × {r.returns.shape[1]}"
        lines.append(f"| {r.env} | {tag} | {dims} | " + " | ".join(cells) + " |")
    n_ep = max(r.num_episodes for r in results)
    lines.append("")
    lines.append("Return per episode of the trial (mean ± 95% CI):")
    lines.append("")
    lines.append("| agent | " + " | ".join(f"ep {e + 1}" for e in range(n_ep)) + " |")
    lines.append("|" + "---|" * (1 + n_ep))
    for r in results:
        cells = [_fmt(c.mean, c.half_width) for c in r.curve()]
        cells += ["–"] * (n_ep - len(cells))
        lines.append(f"| {r.agent} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(results: Sequence[MetaTestResult], path: str | Path, title: str = "") -> None:
    """Adaptation curves (return per episode index, 95% CI band) for several results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_success = any(r.success_defined for r in results)
    fig, axes = plt.subplots(1, 2 if with_success else 1, figsize=(11 if with_success else 6, 4))
    axes = np.atleast_1d(axes)
    for r in results:
        label = f"{r.agent} [{r.env}]" if len({x.env for x in results}) > 1 else r.agent
        for ax, curve in zip(axes, [r.curve(), r.success_curve()], strict=False):
            x = np.arange(1, len(curve) + 1)
            m = np.array([c.mean for c in curve])
            h = np.nan_to_num(np.array([c.half_width for c in curve]))
            ax.plot(x, m, marker="o" if len(x) <= 20 else None, ms=3, label=label)
            ax.fill_between(x, m - h, m + h, alpha=0.2)
    axes[0].set_xlabel("episode in trial")
    axes[0].set_ylabel("return")
    axes[0].set_title(title or "adaptation curve on held-out tasks")
    if with_success:
        axes[1].set_xlabel("episode in trial")
        axes[1].set_ylabel("success rate")
        axes[1].set_title("success")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def _save_figure(fig, path: str | Path) -> None:
    """Write ``fig`` atomically (temporary file, then rename); the format follows the suffix
    (.png, .pdf, .svg; PNG when there is none). Checks the destination first, so a bad path gives
    a message naming it and leaves no temporary file behind."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a file name, e.g. {path / 'curves.png'}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the directory {path.parent} does not "
                                "exist; create it or choose another --out")  # fmt: skip
    fmt = path.suffix[1:].lower() or "png"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format=fmt)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def plot_training(runs: Sequence[tuple[str, list[dict]]], path: str | Path,
                  key: str = "trial_return") -> bool:
    """Training curves: ``key`` against environment steps for each (label, metrics rows) run.

    Returns False (and writes nothing) when no run logged ``key``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    plotted = False
    for label, rows in runs:
        rows = [r for r in rows if key in r and "env_steps" in r]
        if rows:
            ax.plot([r["env_steps"] for r in rows], [r[key] for r in rows], label=label)
            plotted = True
    if plotted:
        ax.set_xlabel("environment steps (all seeds)")
        ax.set_ylabel(f"{key} (training tasks, mean over seeds)")
        ax.set_title("meta-training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        _save_figure(fig, path)
    plt.close(fig)
    return plotted


def write_results(results: Sequence[MetaTestResult], out_dir: str | Path) -> dict[str, Path]:
    """Write JSON, CSV, Markdown and PNG for ``results`` into ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / v for k, v in [("json", RESULTS_JSON), ("csv", RESULTS_CSV),
                                     ("md", RESULTS_MD), ("png", CURVE_PNG)]}  # fmt: skip
    atomic_write_text(
        paths["json"], json.dumps({"results": [result_to_dict(r) for r in results]}, indent=1)
    )
    rows = ["agent,env,seed,task,episode,return,success,length,first_success_step"]
    for r in results:
        s, t, e = r.returns.shape
        for i in range(s):
            for j in range(t):
                for k in range(e):
                    rows.append(
                        f"{r.agent},{r.env},{r.seeds[i]},{j},{k},{r.returns[i, j, k]:.6g},"
                        f"{int(r.success[i, j, k])},{r.lengths[i, j, k]},"
                        f"{r.first_success_step[i, j, k]}"
                    )
    atomic_write_text(paths["csv"], "\n".join(rows) + "\n")
    atomic_write_text(paths["md"], markdown_table(results))
    plot_curves(results, paths["png"], title=f"{results[0].env}: held-out tasks")
    return paths

