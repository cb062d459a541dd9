"""Suite-wide set-up.

Many tests build the same jitted programs more than once: a run and its resumed half, `train`
and then `eval` in a CLI subprocess, two seeds of a determinism check. On a 2-core CI machine
XLA compilation is most of the suite's time, so the suite shares one JAX persistent compilation
cache. It lives in a fresh temporary directory per session (nothing is reused across runs, so CI
still starts from scratch) and is inherited by CLI subprocesses through the environment. A
cached executable is the same compiled program, so results are bit-identical with or without it.
Set JAX_COMPILATION_CACHE_DIR yourself to use another directory (it is then left in place).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Must happen before anything imports jax: jax reads these variables once, at import.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="adaptrl-test-xla-cache-")
# jax's default (1 s) skips most of the suite's programs, which compile in well under a second
# each but are many.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def benchmark_script():
    """``load(name)`` imports ``benchmarks/<name>.py`` as a module (scripts, not a package)."""

    def load(name: str):
        path = BENCHMARKS / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
