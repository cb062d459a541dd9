"""SAC (and PEARL) gradient-update speed against this machine's dense-matmul FLOP rate.

    python benchmarks/sac_speed.py [--steps 500] [--out docs/results/sac_speed.md]

Measures, in one process:

1. the dense float32 matmul rate: one large square matmul (the machine's practical peak) and a
   chain of matmuls at SAC's own layer shape (batch x width @ width x width), both jitted;
2. SAC gradient updates per second at the default ``SACConfig`` sizes (one update = critic,
   actor and temperature steps plus the Polyak update, on a batch drawn from replay), timed
   over a jitted ``lax.scan`` of many updates so that no Python overhead is counted;
3. the same for one PEARL gradient step at the default ``PEARLConfig`` sizes;

and reports FLOPs per update (XLA's own count of the compiled update, and an analytic count of
the matmuls) next to the achieved FLOP rate as a fraction of the matmul rates.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import jax
import jax.numpy as jnp

from adaptrl.algos import pearl, sac
from adaptrl.envs.registry import make


def _time(fn, *args, repeats: int = 3) -> float:
    """Best wall-clock seconds of ``fn(*args)`` (compiled beforehand)."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def matmul_rate(n: int = 2048) -> float:
    """FLOP/s of one n x n @ n x n float32 matmul."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n))
    return 2 * n**3 / _time(jax.jit(jnp.matmul), a, b)


def layer_matmul_rate(batch: int, width: int, chain: int = 2000) -> float:
    """FLOP/s of a chain of (batch x width) @ (width x width) matmuls (SAC's layer shape)."""
    w = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(0), (width, width)))[0]
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, width))

    @jax.jit
    def run(x, w):
        return jax.lax.scan(lambda h, _: (h @ w, None), x, None, length=chain)[0]

    return 2 * batch * width * width * chain / _time(run, x, w)


def xla_flops(fn, *args) -> float:
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    if isinstance(cost, list):
        cost = cost[0]
    return float(cost.get("flops", float("nan")))


def mlp_flops(batch: int, sizes: list[int]) -> int:
    """Matmul FLOPs of one forward pass of an MLP with layer sizes [in, h1, ..., out]."""
    return sum(2 * batch * i * o for i, o in zip(sizes[:-1], sizes[1:], strict=True))


def sac_analytic_flops(config: sac.SACConfig, obs_dim: int, act_dim: int) -> int:
    """Matmul FLOPs of one SAC update, backward passes counted as twice the forward.

    TD target: actor forward + target twin-critic forward on s'. Critic loss: twin forward and
    backward. Actor loss: actor forward/backward and twin-critic forward/backward (w.r.t. the
    action only, counted in full as XLA cannot skip the weight-gradient matmuls' inputs).
    """
    B, h = config.batch_size, list(config.hidden_sizes)
    actor = mlp_flops(B, [obs_dim, *h, 2 * act_dim])
    critic = 2 * mlp_flops(B, [obs_dim + act_dim, *h, 1])
    return (actor + critic) + 3 * critic + 3 * actor + 3 * critic


def bench_sac(config: sac.SACConfig, steps: int):
    b = make("point-nav-dense")
    state = sac.init(jax.random.PRNGKey(0), b, config, 1)
    update = jax.jit(sac.make_update(b, config, 1))
    while int(state.buffer.size) < max(config.random_steps, config.batch_size) + 1:
        state, _ = update(state)  # fill the buffer with real transitions
    obs_dim, act_dim = sac._dims(b, config)
    nets = sac.make_nets(config.hidden_sizes, act_dim, config.target_entropy)
    step = sac.make_gradient_step(nets, config)

    def many(learner, buffer, key):
        body = lambda l, k: step(l, buffer, k)  # noqa: E731
        return jax.lax.scan(body, learner, jax.random.split(key, steps))[0]

    seconds = _time(jax.jit(many), state.learner, state.buffer, jax.random.PRNGKey(1))
    flops = xla_flops(step, state.learner, state.buffer, jax.random.PRNGKey(2))
    return steps / seconds, flops, sac_analytic_flops(config, obs_dim, act_dim)


def bench_pearl(config: pearl.PEARLConfig, steps: int):
    b = make("point-nav-sparse")
    config = dataclasses.replace(config, initial_trajectories=max(config.initial_trajectories, 1))
    state = pearl.init(jax.random.PRNGKey(0), b, config, 1)
    step = pearl.make_gradient_step(b, config)

    def many(learner, rl, enc, key):
        body = lambda l, k: step(l, rl, enc, k)  # noqa: E731
        return jax.lax.scan(body, learner, jax.random.split(key, steps))[0]

    args = (state.learner, state.rl_buffers, state.enc_buffers)
    seconds = _time(jax.jit(many), *args, jax.random.PRNGKey(1))
    return steps / seconds, xla_flops(step, *args, jax.random.PRNGKey(2))


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500, help="gradient steps per timing")
    p.add_argument("--pearl-steps", type=int, default=100)
    p.add_argument("--out", default=None, help="also write the report to this markdown file")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    sac_cfg, pearl_cfg = sac.SACConfig(), pearl.PEARLConfig()
    peak = matmul_rate()
    layer = layer_matmul_rate(sac_cfg.batch_size, sac_cfg.hidden_sizes[0])
    ups, flops, analytic = bench_sac(sac_cfg, args.steps)
    p_ups, p_flops = bench_pearl(pearl_cfg, args.pearl_steps)
    rate = ups * flops
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s), jax {jax.__version__}",
        f"dense matmul 2048^3 float32: {peak / 1e9:.1f} GFLOP/s",
        f"matmul chain {sac_cfg.batch_size}x{sac_cfg.hidden_sizes[0]} @ "
        f"{sac_cfg.hidden_sizes[0]}^2: {layer / 1e9:.1f} GFLOP/s",
        "",
        "| update | sizes | updates/s | FLOPs/update (XLA) | matmul FLOPs (analytic) "
        "| achieved GFLOP/s | % of 2048^3 rate | % of layer-shape rate |",
        "|---|---|---|---|---|---|---|---|",
        f"| SAC | batch {sac_cfg.batch_size}, hidden {sac_cfg.hidden_sizes} | {ups:,.0f} | "
        f"{flops / 1e6:.1f} M | {analytic / 1e6:.1f} M | {rate / 1e9:.1f} | "
        f"{100 * rate / peak:.0f}% | {100 * rate / layer:.0f}% |",
        f"| PEARL | meta-batch {pearl_cfg.meta_batch} x batch {pearl_cfg.batch_size}, context "
        f"{pearl_cfg.context_batch_size}, hidden {pearl_cfg.hidden_sizes} | {p_ups:,.0f} | "
        f"{p_flops / 1e6:.1f} M | | {p_ups * p_flops / 1e9:.1f} | "
        f"{100 * p_ups * p_flops / peak:.0f}% | |",
        "",
        f"wall-clock of this script: {time.perf_counter() - t0:.0f} s",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report + "\n")
    return report


if __name__ == "__main__":
    main()
