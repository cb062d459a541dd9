"""Smoke: RL² meta-trains on HalfCheetah-Vel through the command line (native MuJoCo physics)."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("mujoco")

from adaptrl.cli import main  # noqa: E402


def test_rl2_trains_on_cheetah_vel_through_the_cli(tmp_path):
    run = tmp_path / "rl2-cheetah"
    argv = ["train", "rl2", "--env", "cheetah-vel", "--iterations", "2", "--log-every", "1",
            "--rl2.num-trials", "8", "--rl2.hidden-size", "16", "--eval-seeds", "1",
            "--no-references", "--no-progress", "--run-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    # 8 trials x 2 episodes x 200 steps per update
    assert [float(r["env_steps"]) for r in rows] == [3200.0, 6400.0]
    (result,) = json.loads((run / "results" / "meta_test.json").read_text())["results"]
    assert result["env"] == "cheetah-vel" and result["agent"] == "rl2"
    trial = result["summary"]["trial_return"]
    # 100 held-out target velocities; rewards are minus tracking error minus control cost.
    assert trial["n"] == 100 and -2000 < trial["mean"] < 0


def test_mujoco_throughput_benchmark_quick(tmp_path):
    """`benchmarks/throughput.py --mujoco --quick` measures every cell and writes its table."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
    spec = importlib.util.spec_from_file_location("throughput_benchmark_mujoco", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "mujoco.md"
    res = bench.main(["--mujoco", "--quick", "--output", str(out)])
    for name in bench.MUJOCO_FAMILIES:
        row = res["results"][name]
        assert row["raw1"] > 0 and row["rawN"] > 0 and row["gym"] > 0
        assert 0 < row[4]["median"] <= row[4]["best"]
    text = out.read_text()
    assert "| cheetah-vel |" in text and "| ant-dir |" in text and "MuJoCo 3.3.0" in text
