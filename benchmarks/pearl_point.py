"""PEARL on PEARL's 2D point robots, next to task-agnostic SAC and oracle SAC.

    python benchmarks/pearl_point.py sparse [--seeds 1] [--pearl-iterations N] [--sac-iterations N]
    python benchmarks/pearl_point.py dense  [...]
    python benchmarks/pearl_point.py report        # docs/results/pearl.md from what was saved
    python benchmarks/pearl_point.py all --quick   # smoke test of every part (tiny runs)

Every agent is trained and meta-tested through ``adaptrl.train.train`` (the path of
``adaptrl train ALGO --env ...``); run directories and a JSON summary per part go under
``runs/pearl_bench/``. Meta-test: held-out tasks (20 held-out goals for the sparse robot, 100
for the dense one), ``--eval-seeds`` evaluation seeds per trained seed, trials of 4 episodes:

- sparse: success (reaching within 0.2 of the goal) in each episode of the trial; the target is
  PEARL's success rate in the episode after at most 3 exploration trajectories >= 0.8;
- dense: PEARL's post-adaptation return (mean of episodes 2-4) within 10% of oracle SAC's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import jax

from adaptrl.algos import pearl, sac
from adaptrl.eval.report import load_results
from adaptrl.train import RunConfig, train

sys.path.insert(0, str(Path(__file__).parent))
from _report import cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "pearl_bench"
REPORT = ROOT / "docs" / "results" / "pearl.md"
ENVS = {"sparse": "point-nav-sparse", "dense": "point-nav-dense"}
EPISODES = 4


def machine() -> dict:
    import flax
    import optax

    cpu = cpu_model()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "backend": jax.default_backend(),
        "versions": f"python {platform.python_version()}, jax {jax.__version__}, "
        f"flax {flax.__version__}, optax {optax.__version__}",
        "load_before": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def configs(quick: bool) -> dict:
    if not quick:
        return {"pearl": pearl.PEARLConfig(), "sac": sac.SACConfig(),
                "sac-oracle": sac.SACOracleConfig()}  # fmt: skip
    tiny_sac = dict(hidden_sizes=(16,), num_envs=2, steps_per_iteration=2,
                    updates_per_iteration=2, batch_size=8, random_steps=0)  # fmt: skip
    return {
        "pearl": pearl.PEARLConfig(encoder_sizes=(16,), hidden_sizes=(16,),
                                   initial_trajectories=1, tasks_per_iteration=2,
                                   prior_trajectories=1, extra_posterior_trajectories=1,
                                   updates_per_iteration=2, meta_batch=2, batch_size=8,
                                   context_batch_size=8, buffer_capacity=100),  # fmt: skip
        "sac": sac.SACConfig(**tiny_sac),
        "sac-oracle": sac.SACOracleConfig(**tiny_sac),
    }


def run_part(part: str, args) -> dict:
    env = ENVS[part]
    iters = {"pearl": args.pearl_iterations, "sac": args.sac_iterations,
             "sac-oracle": args.sac_iterations}  # fmt: skip
    if args.quick:
        iters = dict.fromkeys(iters, 2)
    path = OUT / f"{part}{'_quick' if args.quick else ''}.json"
    # Agents can be (re)run one at a time: results of the others are kept.
    old = json.loads(path.read_text()) if path.exists() else {}
    info = {**machine(), "env": env, "seeds": args.seeds, "eval_seeds": args.eval_seeds,
            "agents": {k: v for k, v in old.get("agents", {}).items()
                       if k.split(" ")[-1] not in args.algos}}  # fmt: skip
    for algo, cfg in configs(args.quick).items():
        if algo not in args.algos:
            continue
        run_dir = OUT / f"{part}{'_quick' if args.quick else ''}" / algo
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run = RunConfig(env=env, iterations=iters[algo], num_seeds=args.seeds, seed=0,
                        eval_seeds=args.eval_seeds, eval_episodes=EPISODES,
                        run_dir=str(run_dir), progress=False, log_every=10,
                        checkpoint_every=max(iters[algo], 1), references=algo == "pearl")
        t = time.perf_counter()
        train(algo, run, cfg)
        wall = time.perf_counter() - t
        for r in load_results(run_dir / "results"):
            name = algo if r.agent in ("pearl", "sac", "sac-oracle") else f"reference {r.agent}"
            s = r.summary()
            info["agents"][name] = {
                "curve": [c.mean for c in r.curve()],
                "curve_ci95": [c.half_width for c in r.curve()],
                "success_curve": [c.mean for c in r.success_curve()],
                "success_ci95": [c.half_width for c in r.success_curve()],
                "post_adaptation_return": s.get("post_adaptation_return", s["exploit_return"]),
                "mean_episode_return": float(r.returns.mean()),
                "privileged": r.privileged,
            }
        info["agents"][algo].update(
            wall_s=wall, iterations=iters[algo], config=dataclasses.asdict(cfg),
            command=f"adaptrl train {algo} --env {env} --iterations {iters[algo]} "
            f"--num-seeds {args.seeds} --eval-seeds {args.eval_seeds} --eval-episodes {EPISODES}",
        )
        print(f"{part}/{algo}: {wall:.0f} s, curve "
              f"{[round(x, 3) for x in info['agents'][algo]['curve']]}, success "
              f"{[round(x, 3) for x in info['agents'][algo]['success_curve']]}", flush=True)
    info["load_after"] = os.getloadavg()[0]
    info["command"] = "python benchmarks/pearl_point.py " + " ".join(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1, default=str))
    print(f"saved {path}")
    return info


def _row(name, a, success: bool) -> str:
    curve = " / ".join(f"{x:.2f}" for x in (a["success_curve"] if success else a["curve"]))
    extra = f"{a['wall_s']:.0f} s, {a['iterations']} it" if "wall_s" in a else "–"
    post = a["post_adaptation_return"]
    return (f"| {name}{' (privileged)' if a['privileged'] else ''} | {curve} | "
            f"{post['mean']:.3f} ± {post['ci95']:.3f} | {extra} |")


# Hand-written reading of the measurements (kept here so that `report` regenerates the page).
FINDINGS = """## What the numbers say

- **Both PEARL targets are missed.** Sparse: 0.10-0.12 success after 1-3 exploration
  trajectories (target 0.8; task-agnostic SAC 0.05, oracle SAC 1.00). Dense: the return per
  episode rises from -19.4 to -9.8 over the trial, so the posterior updates do help, but the
  post-adaptation mean (-11.4) is 114% below oracle SAC (-5.3) instead of within 10%.
- **The sparse target (0.8) is beyond posterior-sampling exploration itself.** PEARL explores
  by acting on one z ~ q(z | context) per trajectory, i.e. it commits to one goal hypothesis per
  20-step trajectory. A goal-search reference with the *exact* posterior over the 100 goals and
  the same one-draw-per-trajectory exploration (what a perfectly trained PEARL would do) succeeds
  0.13 / 0.24 / 0.35 / 0.47 in episodes 1-4, and a sweeping explorer with the same posterior 0.60
  / 1.00 / 1.00 / 1.00 (`docs/results/pearl_ceiling.md`, `python benchmarks/pearl_ceiling.py`).
  So 0.8 within 3 exploration trajectories needs a different exploration strategy than PEARL's;
  the fair bar for PEARL here is that ceiling. Our best sparse PEARL (reward_scale 100, posterior
  trajectories in the encoder buffer, `docs/pearl_gap_analysis.md`) reached 0.00 / 0.13 / 0.20 /
  0.27, about 55-60% of it.
- **The SAC references are right.** Oracle SAC equals the analytic straight-line controller
  (dense -5.33 vs -5.23; sparse 100% success, 13.0 vs 13.25 return); task-agnostic SAC equals
  the controller aimed at the mean goal (-16.1 vs -15.8; 5% success vs 0%).
- **Dense robot: more training did not help.** After 40 PEARL iterations the curve was already
  -19.0 / -14.5 / -11.8 / -10.6; after 200 it is -19.4 / -13.2 / -11.2 / -9.8. Extra ad-hoc
  runs of 50 iterations, each meta-tested like the table, all landed at -13 to -15 for
  episode 2:
  - 20-transition contexts (the size of the first episode): -19.1 / -13.4 / -10.8 / -9.2;
  - `kl_weight` 0.01: -18.5 / -13.1 / -10.4 / -9.0;
  - the deterministic encoder: -15.7 / -15.1 / -12.3 / -11.3 (its critic loss fell from
    about 8 to 1.4, so its critics do read the goal from z; the policy still does not reach
    it);
  - one whole trajectory as the context (`--pearl.context-sampling trajectory`):
    -18.5 / -13.3 / -11.7 / -11.1.
  Other checks on the 200-iteration checkpoint:
  - it scores the same on its training goals (-19.3 / -12.9 / -10.7 / -9.0), so this is not
    over-fitting to the 100 training goals;
  - acting on the posterior mean instead of a sample is no better (-16.2 / -15.9 / -12.6 /
    -10.0);
  - stochastic actions at meta-test are no better either (-18.9 / -13.7 / -11.6 / -9.5).
  During training, the posterior-sampled trajectories (with contexts from 5 trajectories)
  return about -8.5. So the limit is how much the encoder + policy extract from one or two
  trajectories, not the amount of training. Learning to triangulate a goal from distances
  with a sum of per-transition factors is hard. Untried: a wider latent, full-covariance
  factors, or longer training with PEARL's 300x3 networks and 2000 steps per iteration.
- **Sparse robot: the encoder's information grows slowly.** With PEARL's sparse setting
  `kl_weight` 1, the posterior collapsed to the prior after 60 iterations: KL 0.002 nats per
  task with 64-transition contexts, 0.003 with 256. With 0.1 it carries information (KL 1.8
  nats after 200 iterations). But the policy under a prior sample still heads for nearly one
  place (first-episode success 0.07), so exploration by posterior sampling has not formed yet.
  The cause: a context without a reward carries no information about the goal, and those
  contexts train z ~ N(0, I) to mean "the average goal". Ad-hoc 60-150-iteration variants
  were no better:
  - PEARL's fixed alpha = 1 without tuning: 0.05 success;
  - 5 posterior trajectories per iteration into the encoder buffer, 10 tasks per
    iteration: 0.15 flat;
  - the same with lr 1e-3 and s' in the context: 0.0 / 0.1.
  PEARL's own runs use far more gradient steps: 2000 per iteration of 16 x 256 transitions
  with 300x3 networks, about 40x the compute per iteration of the default here, which runs
  at ~90 steps/s on this CPU.
"""


def report() -> str:
    lines = [
        "# PEARL on the 2D point robots", "",
        "Produced by `python benchmarks/pearl_point.py sparse`, `... dense`, then `... report` "
        "(the numbers are copied from `runs/pearl_bench/*.json`).", "",
    ]  # fmt: skip
    for part, env in ENVS.items():
        path = OUT / f"{part}.json"
        if not path.exists():
            lines += [f"## {env}", "", "not run yet", ""]
            continue
        info = json.loads(path.read_text())
        success = part == "sparse"
        lines += [
            f"## {env}", "",
            f"machine: {info['cpu']}, {info['backend']}; {info['versions']}; {info['date']}; "
            f"load average {info['load_before']:.1f} before, {info['load_after']:.1f} after "
            "(other jobs shared the 2 cores)",
            f"command: `{info.get('command', '?')}`", "",
            f"training seeds: {info['seeds']} (seed 0..{info['seeds'] - 1}); evaluation seeds "
            f"per trained seed: {info['eval_seeds']}; {EPISODES}-episode trials on the held-out "
            "tasks", "",
            f"| agent | {'success' if success else 'return'} per episode 1/2/3/4 | "
            "post-adaptation return (episodes 2-4) | training wall-clock |",
            "|---|---|---|---|",
        ]  # fmt: skip
        for name, a in info["agents"].items():
            lines.append(_row(name, a, success))
        agents = info["agents"]
        if success:
            s = agents["pearl"]["success_curve"]
            best = max(s[1:EPISODES])
            lines += ["", f"**Target** (PEARL success after at most 3 exploration trajectories "
                      f">= 0.8): success in episode 4 = {s[-1]:.2f}, best of episodes 2-4 = "
                      f"{best:.2f} -> {'met' if best >= 0.8 else 'NOT met'}."]  # fmt: skip
        else:
            p = agents["pearl"]["post_adaptation_return"]["mean"]
            o = agents["sac-oracle"]["mean_episode_return"]
            gap = (o - p) / abs(o)
            lines += ["", f"**Target** (PEARL post-adaptation return within 10% of oracle SAC's): "
                      f"PEARL {p:.3f} vs oracle SAC {o:.3f}: {100 * gap:.1f}% below -> "
                      f"{'met' if gap <= 0.10 else 'NOT met'}."]  # fmt: skip
        lines += ["", "The same runs through the CLI:", ""]
        lines += [f"    {a['command']}" for a in agents.values() if "command" in a]
        lines.append("")
    speed = OUT / "sac_speed.md"
    lines += ["## Speed (`python benchmarks/sac_speed.py --out runs/pearl_bench/sac_speed.md`)", ""]
    lines += [speed.read_text() if speed.exists() else "not run yet", ""]
    lines += [FINDINGS]
    text = "\n".join(lines)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text + "\n")
    print(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["sparse", "dense", "report", "all"])
    p.add_argument("--seeds", type=int, default=1, help="training seeds (vmapped)")
    p.add_argument("--eval-seeds", type=int, default=3)
    p.add_argument("--pearl-iterations", type=int, default=200)
    p.add_argument("--sac-iterations", type=int, default=1000)
    p.add_argument("--algos", nargs="+", default=["pearl", "sac", "sac-oracle"],
                   choices=["pearl", "sac", "sac-oracle"], help="agents to (re)run")
    p.add_argument("--quick", action="store_true", help="tiny settings: checks the plumbing")
    args = p.parse_args(argv)
    parts = ["sparse", "dense"] if args.part == "all" else [args.part]
    for part in parts:
        if part == "report":
            report()
        else:
            run_part(part, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
