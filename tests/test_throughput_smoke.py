"""The throughput benchmark's ``--quick`` mode runs end to end and writes its table."""

from __future__ import annotations

# Discrete and Box actions, finite and continuous task sets, the largest observation.
ENVS = ["bandit-k5-n10", "point-nav", "grid-varibad", "sign-grid"]


def test_quick_throughput_run_writes_table(tmp_path, benchmark_script):
    bench = benchmark_script("throughput")
    assert set(ENVS) <= set(bench.FAMILIES)
    out = tmp_path / "throughput.md"
    results = bench.main(["--quick", "--envs", *ENVS, "--output", str(out)])
    per_env = results["threefry2x32"]
    assert sorted(per_env) == sorted((name, 4) for name in ENVS)
    for name, r in per_env.items():
        assert r["scan_steps"] == bench.scan_length(4, quick=True)
        assert 0 < r["median"] <= r["best"], name
    text = out.read_text()
    assert "| env | 4 envs |" in text
    for name in ENVS:
        assert f"| {name} | " in text
    assert "nproc" in text and "JAX " in text and "--quick" in text
