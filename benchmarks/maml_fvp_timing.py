"""Per-iteration time of MAML's default TRPO update with the two Fisher-vector-product modes.

``once`` (the default in adaptrl) linearizes every task's adapted-policy outputs once per CG
solve and reuses the stored residuals in each CG iteration; ``relinearize`` redoes the primal
pass (the inner step) inside every product. Both compute the same products
(tests/test_maml.py::test_fisher_vector_product_is_hessian_of_post_update_kl); this times them
on point-nav with ``MAMLConfig()``'s defaults, one seed, after compiling.

    python benchmarks/maml_fvp_timing.py --iterations 10
"""

from __future__ import annotations

import argparse
import functools
import time

import jax

import adaptrl
from adaptrl.algos import maml


def time_mode(linearize_once: bool, iterations: int) -> tuple[float, float]:
    """(compile s, ms per meta-iteration) of the jitted update in one FVP mode."""
    original = maml.kl_hessian_vector_product
    # make_update's TRPO step looks the function up when traced: patch it for this trace only.
    maml.kl_hessian_vector_product = functools.partial(original, linearize_once=linearize_once)
    try:
        bench = adaptrl.make("point-nav")
        cfg = maml.MAMLConfig()
        state = maml.init(jax.random.PRNGKey(0), bench, cfg, 500)
        t = time.perf_counter()
        update = jax.jit(maml.make_update(bench, cfg, 500)).lower(state).compile()
        compile_s = time.perf_counter() - t
    finally:
        maml.kl_hessian_vector_product = original
    state, _ = update(state)  # warm-up
    jax.block_until_ready(state)
    t = time.perf_counter()
    for _ in range(iterations):
        state, _ = update(state)
    jax.block_until_ready(state)
    return compile_s, 1e3 * (time.perf_counter() - t) / iterations


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--iterations", type=int, default=10)
    args = p.parse_args()
    for name, once in (("linearize once (default)", True), ("relinearize per product", False)):
        compile_s, ms = time_mode(once, args.iterations)
        print(f"{name}: {ms:.0f} ms per meta-iteration over {args.iterations} "
              f"(compile {compile_s:.1f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
