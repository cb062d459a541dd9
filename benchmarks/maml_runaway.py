"""Which 2D-navigation tasks does one MAML inner step send the wrong way, and why?

    python benchmarks/maml_runaway.py --run-dir runs/maml_bench/nav      # a trained MAML run
    python benchmarks/maml_runaway.py --state-pickle state.pkl           # a pickled MAMLState

For each trained seed: 400 fresh goals ~ U[-0.5, 0.5]^2, 20 pre-update episodes, one inner step
(lr 0.1), 20 post-update episodes, with the inner loss averaged both ways (``loss_averaging``
"steps" and "episodes") on the *same* meta-parameters. Printed per distance of the goal from the
start: mean / median post-update return, share of tasks below -100 (the adapted policy runs past
the goal and away), size of the inner step, and the shortest pre-update episode (point-nav ends
an episode within 0.01 of the goal, so near the start some episodes end after a few steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pickle

import jax
import jax.numpy as jnp
import numpy as np

import adaptrl
from adaptrl.algos import maml
from adaptrl.envs.point_nav import sample_uniform_goal

BINS = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 0.8)]


def load_states(args) -> tuple[list, maml.MAMLConfig]:
    if args.state_pickle:
        with open(args.state_pickle, "rb") as f:
            return [pickle.load(f)], maml.MAMLConfig()
    from adaptrl.train import _init_states, load_run_config
    from adaptrl.utils.checkpoint import latest_checkpoint, load_checkpoint

    spec, run, cfg = load_run_config(args.run_dir)
    bench = adaptrl.make(run.env, split_seed=run.split_seed)
    template = _init_states(spec, bench, run, cfg)
    _, state = load_checkpoint(latest_checkpoint(f"{args.run_dir}/checkpoints"), template)
    return [jax.tree_util.tree_map(lambda x, i=i: x[i], state) for i in range(run.num_seeds)], cfg


def per_task(bench, cfg: maml.MAMLConfig, state, num_tasks: int, seed: int) -> dict:
    env, net = bench.env, maml.make_policy(bench.env, cfg)
    value_fn = maml._value_fn(cfg, state.value_params)
    tasks = jax.vmap(functools.partial(sample_uniform_goal, low=-0.5, high=0.5))(
        jax.random.split(jax.random.PRNGKey(seed), num_tasks)
    )

    def one(task, key):
        k1, k2 = jax.random.split(key)
        ep = maml.rollout_episodes(env, net, state.params, task, k1, cfg.trajectories_per_task)
        batch = maml.make_task_batch(ep, cfg, value_fn)
        phi = maml.inner_step(net, state.params, batch, cfg.inner_lr, "maml", True,
                              cfg.loss_averaging)  # fmt: skip
        post = maml.rollout_episodes(env, net, phi, task, k2, cfg.trajectories_per_task)
        leaves = zip(jax.tree_util.tree_leaves(phi), jax.tree_util.tree_leaves(state.params),
                     strict=True)  # fmt: skip
        return {
            "post": post.rewards.sum(-1).mean(),
            "step": jnp.sqrt(sum(jnp.sum((a - b) ** 2) for a, b in leaves)),
            "min_pre_len": ep.valid.sum(-1).min(),
        }

    out = jax.jit(jax.vmap(one))(tasks, jax.random.split(jax.random.PRNGKey(seed + 1), num_tasks))
    out = jax.device_get(out)
    out["goal_norm"] = np.linalg.norm(np.asarray(tasks.goal), axis=-1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--run-dir")
    g.add_argument("--state-pickle")
    p.add_argument("--tasks", type=int, default=400)
    p.add_argument("--trained-with", choices=["steps", "episodes"],
                   help="loss_averaging the pickled state was trained with (for the printout)")
    args = p.parse_args(argv)
    states, cfg = load_states(args)
    bench = adaptrl.make("point-nav")
    trained = args.trained_with or (cfg.loss_averaging if args.run_dir else "unknown")
    print(f"trained with loss_averaging={trained!r}; {len(states)} seed(s) x "
          f"{args.tasks} goals")  # fmt: skip
    print("| inner-loss averaging at meta-test | |goal| | tasks | post-update return mean | "
          "median | share < -100 | inner step norm | shortest pre-update episode |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for averaging in ("steps", "episodes"):
        c = dataclasses.replace(cfg, loss_averaging=averaging)
        outs = [per_task(bench, c, s, args.tasks, seed=7) for s in states]
        res = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        for lo, hi in [*BINS, (0.0, 1.0)]:
            m = (res["goal_norm"] >= lo) & (res["goal_norm"] < hi)
            x = res["post"][m]
            label = "all" if (lo, hi) == (0.0, 1.0) else f"[{lo}, {hi})"
            print(f"| {averaging} | {label} | {m.sum()} | {x.mean():.1f} | {np.median(x):.1f} | "
                  f"{(x < -100).mean():.3f} | {res['step'][m].mean():.2f} | "
                  f"{res['min_pre_len'][m].mean():.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
