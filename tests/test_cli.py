"""The command line end to end: the main job with tiny settings, errors, Ctrl-C and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from adaptrl.cli import main

TINY = ["--rl2.hidden-size", "8", "--rl2.embed-sizes", "8", "--rl2.num-trials", "8",
        "--rl2.num-minibatches", "2", "--rl2.ppo-epochs", "1"]  # fmt: skip


def test_train_eval_plot_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "rl2", "--env", "grid-varibad", "--iterations", "3", "--log-every", "1",
               "--eval-seeds", "1", "--no-progress", "--run-dir", str(run), *TINY])  # fmt: skip
    assert rc == 0
    for name in ("config.json", "metrics.csv", "results/meta_test.json", "results/meta_test.csv",
                 "results/meta_test.md", "results/adaptation_curve.png"):  # fmt: skip
        assert (run / name).exists(), name
    assert list((run / "tensorboard").iterdir())
    assert list((run / "checkpoints").glob("ckpt_*.adaptrl"))
    md = (run / "results" / "meta_test.md").read_text()
    assert "rl2" in md and "oracle" in md and "task-agnostic" in md
    assert main(["eval", str(run), "--seeds", "1", "--out", str(tmp_path / "ev")]) == 0
    assert (tmp_path / "ev" / "meta_test.json").exists()
    assert main(["plot", str(run), str(tmp_path / "ev"), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "c_training.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "results" / "training_curve.png").exists()
    capsys.readouterr()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "bandit-k5-n10" in out and "rl2" in out and "sign-grid" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "rl2", "--env", "bandit-k5-n1"], "did you mean: bandit-k5-n10"),
        (["train", "rl3"], "did you mean: rl2"),
        (["train", "rl2", "--rl2.num-trials", "0"], "num_trials must be >= 1"),
        (["train", "rl2", "--rl2.num-trials", "10", "--rl2.num-minibatches", "4"], "divisible"),
        (["train", "rl2", "--iterations", "-1"], "--iterations must be >= 0"),
        (["eval", "/nonexistent/run"], "not an adaptrl run directory"),
        (["frobnicate"], "unknown command"),
    ],
)
def test_bad_input_one_line_error(argv, message, capsys, tmp_path):
    rc = main(argv + (["--run-dir", str(tmp_path / "r")] if argv[0] == "train" else []))
    err = capsys.readouterr().err
    assert rc == 2
    assert message.lower() in err.lower()
    assert err.strip().count("\n") == 0  # one line
    assert not (tmp_path / "r").exists()  # nothing written for a rejected command


def test_existing_run_is_never_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"keep": "me"}')
    rc = main(["train", "oracle", "--env", "grid-varibad", "--run-dir", str(run)])
    assert rc == 2
    assert "already holds a run" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text()) == {"keep": "me"}


def test_resume_with_changed_config_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "rl2", "--env", "bandit-k2-n10", "--iterations", "1", "--eval-seeds", "1",
            "--no-references", "--no-progress", "--run-dir", str(run), *TINY]  # fmt: skip
    assert main(args) == 0
    rc = main([*args, "--resume", "--rl2.hidden-size", "16"])
    assert rc == 2
    assert "--rl2.hidden-size" in capsys.readouterr().err


def test_corrupt_checkpoint_gives_clear_error(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "rl2", "--env", "bandit-k2-n10", "--iterations", "2", "--eval-seeds", "1",
            "--checkpoint-every", "1", "--keep-checkpoints", "0", "--no-references",
            "--no-progress", "--run-dir", str(run), *TINY]  # fmt: skip
    assert main(args) == 0
    results = (run / "results" / "meta_test.json").read_bytes()
    older, newest = sorted((run / "checkpoints").glob("*.adaptrl"))
    newest.write_bytes(newest.read_bytes()[:-10])
    capsys.readouterr()
    # eval skips the corrupt newest checkpoint, says so, and uses the older one
    assert main(["eval", str(run), "--seeds", "2"]) == 0
    err = capsys.readouterr().err
    assert f"skipping {newest}" in err and "corrupt" in err and f"evaluating {older}" in err
    # another seed count goes to its own directory; training's results are untouched
    assert (run / "results-seeds-2" / "meta_test.json").exists()
    assert (run / "results" / "meta_test.json").read_bytes() == results
    older.write_bytes(b"ADAPTRL-CKPT\n[1]\nxx")  # header that is JSON but not an object
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no usable checkpoint" in err and "corrupt checkpoint header" in err
    assert "Traceback" not in err


def test_foreign_or_corrupt_files_give_clear_errors_and_stay_untouched(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    (foreign / "checkpoints").mkdir(parents=True)
    (foreign / "checkpoints" / "ckpt_00000001.adaptrl").write_text("someone else's")
    for extra in ([], ["--resume"]):  # never adopt a non-empty directory without config.json
        rc = main(["train", "rl2", "--env", "bandit-k2-n10", "--run-dir", str(foreign), *extra])
        assert rc == 2 and "not empty and holds no adaptrl run" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.rglob("*")) == ["checkpoints", "ckpt_00000001.adaptrl"]
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text("[]")  # valid JSON, not a run's config
    rc = main(["train", "rl2", "--env", "bandit-k2-n10", "--resume", "--run-dir", str(odd)])
    assert rc == 2 and "corrupt" in capsys.readouterr().err
    assert main(["eval", str(odd)]) == 2 and "corrupt" in capsys.readouterr().err
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    empty = tmp_path / "empty.json"
    empty.write_text('{"results": []}')
    for path, message in [(binary, "not a valid adaptrl results file"), (empty, "no meta-test")]:
        assert main(["plot", str(path), "--out", str(tmp_path / "c.png")]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and message in err and err.count("\n") == 1
    assert not (tmp_path / "c.png").exists()


def test_plot_destination_errors_leave_no_temporary_files(tmp_path, capsys):
    import matplotlib

    from adaptrl.eval.report import _save_figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    (tmp_path / "outdir").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        _save_figure(fig, tmp_path / "outdir")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _save_figure(fig, tmp_path / "nodir" / "c.png")
    _save_figure(fig, tmp_path / "c.pdf")
    _save_figure(fig, tmp_path / "c")
    plt.close(fig)
    assert (tmp_path / "c.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "c").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "c.pdf", "outdir"]


def test_ctrl_c_saves_and_resume_finishes(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "adaptrl.cli", "train", "rl2", "--env", "bandit-k2-n10",
           "--iterations", "100000", "--log-every", "1", "--checkpoint-every", "100000",
           "--eval-seeds", "1", "--no-references", "--no-progress", "--run-dir", str(run), *TINY,
           "--rl2.no-anneal-lr"]  # a constant lr, so the run's length does not change its updates
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    metrics = run / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and
                                          len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; saved" in err
    ckpts = sorted((run / "checkpoints").glob("*.adaptrl"))
    assert len(ckpts) == 1
    done = int(ckpts[0].name[5:13])
    assert done >= 2
    rows_before = metrics.read_text().splitlines()
    # Resume to a nearby end point: only new iterations are appended, nothing is rewritten.
    assert main([*cmd[3:], "--resume", "--iterations", str(done + 2)]) == 0
    rows_after = metrics.read_text().splitlines()
    assert rows_after[: len(rows_before)] == rows_before
    assert [int(r.split(",")[0]) for r in rows_after[1:]] == list(range(1, done + 3))
    # The interrupted-and-resumed run logs the same values as one run straight through: the
    # checkpoint written on Ctrl-C is the state after exactly `done` updates.
    straight = tmp_path / "straight"
    args = [*cmd[3:], "--iterations", str(done + 2)]
    args[args.index("--run-dir") + 1] = str(straight)
    assert main(args) == 0
    assert (straight / "metrics.csv").read_text().splitlines() == rows_after


def test_resume_guards_kept_checkpoints_and_accepts_older_configs(tmp_path, capsys):
    """--keep-checkpoints 0 keeps every checkpoint (default: the newest 3); a run that kept
    every checkpoint is not resumed with a smaller keep count (the next save would delete them);
    a config.json written before a field existed resumes at its default."""
    run = tmp_path / "run"

    def train(iterations, *extra):
        return main(["train", "rl2", "--env", "bandit-k2-n10", "--iterations", str(iterations),
                     "--eval-seeds", "1", "--checkpoint-every", "1", "--no-references",
                     "--no-progress", "--run-dir", str(run), *TINY, *extra])  # fmt: skip

    assert train(2, "--keep-checkpoints", "0") == 0
    assert train(3, "--resume") == 2
    assert "--keep-checkpoints 0" in capsys.readouterr().err
    assert len(list((run / "checkpoints").glob("*.adaptrl"))) == 2  # nothing deleted
    assert train(3, "--resume", "--keep-checkpoints", "0") == 0
    assert len(list((run / "checkpoints").glob("*.adaptrl"))) == 3
    # An older run: its config.json lacks fields added since (here at their defaults).
    cfg_path = run / "config.json"
    record = json.loads(cfg_path.read_text())
    del record["run"]["keep_checkpoints"], record["algo_config"]["target_kl"]
    cfg_path.write_text(json.dumps(record))
    assert train(4, "--resume") == 0
    kept = sorted(p.name for p in (run / "checkpoints").glob("*.adaptrl"))
    assert kept == [f"ckpt_{i:08d}.adaptrl" for i in (2, 3, 4)]  # default: newest 3
    # ... but a non-default value of such a field is still a difference.
    assert train(5, "--resume", "--rl2.target-kl", "0.02") == 2
    assert "--rl2.target-kl" in capsys.readouterr().err
    assert train(1, "--keep-checkpoints", "-1") == 2
    assert "--keep-checkpoints" in capsys.readouterr().err
