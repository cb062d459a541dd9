"""Algorithm registry: what ``adaptrl train ALGO`` can run.

Every entry exposes the same small set of functions, so one training loop (``adaptrl.train``)
serves all of them:

- ``config_cls``: a frozen dataclass of hyper-parameters (tyro turns its docstring into --help);
- ``init(key, benchmark, config, num_iterations) -> state`` and
  ``make_update(benchmark, config, num_iterations) -> update`` with ``update(state) -> (state,
  metrics)`` pure and jittable (the PRNG key lives in the state; ``num_iterations`` is the planned
  run length, for schedules);
- ``make_agent(state, benchmark, config) -> Agent`` for the meta-test protocol;
- ``env_steps_per_update(benchmark, config)`` for throughput reporting.

Non-learning references (random, oracle, bandit heuristics, PSRL) are entries too, with
``trainable=False``: ``train`` then skips straight to evaluation. That keeps every agent on one
path through logging, results and plots.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from adaptrl.algos import rl2
from adaptrl.tasks.benchmark import Benchmark


class UnknownAlgorithmError(ValueError):
    """Raised for an algorithm name that is not registered."""


@dataclasses.dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    description: str
    config_cls: type
    make_agent: Callable[[Any, Benchmark, Any], Any]
    init: Callable[[Any, Benchmark, Any, int], Any] | None = None
    make_update: Callable[[Benchmark, Any, int], Callable] | None = None
    env_steps_per_update: Callable[[Benchmark, Any], int] | None = None
    supports: Callable[[Benchmark], bool] = lambda benchmark: True

    @property
    def trainable(self) -> bool:
        return self.init is not None

    def check_supports(self, benchmark: Benchmark) -> None:
        if not self.supports(benchmark):
            raise ValueError(
                f"algorithm {self.name!r} does not apply to {benchmark.name!r}; "
                "run `adaptrl list` to see which algorithms go with which environments"
            )


@dataclasses.dataclass(frozen=True)
class NoConfig:
    """This reference agent has no hyper-parameters."""


_REGISTRY: dict[str, AlgorithmSpec] = {}


def register(spec: AlgorithmSpec) -> None:
    if spec.name in _REGISTRY:
        raise ValueError(f"algorithm {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def get_algorithm(name: str) -> AlgorithmSpec:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownAlgorithmError(
            f"unknown algorithm {name!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def list_algorithms() -> dict[str, str]:
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


register(
    AlgorithmSpec(
        name="rl2",
        description="RL2: recurrent policy kept across episodes, PPO over whole trials",
        config_cls=rl2.RL2Config,
        init=rl2.init,
        make_update=rl2.make_update,
        make_agent=rl2.agent_from_state,
        env_steps_per_update=rl2.env_steps_per_update,
    )
)


def _register_references() -> None:
    from adaptrl.baselines import oracle

    register(
        AlgorithmSpec(
            name="oracle",
            description="reference: optimal controller told the task (upper bound)",
            config_cls=NoConfig,
            make_agent=lambda state, b, c: oracle.oracle(b),
        )
    )
    register(
        AlgorithmSpec(
            name="task-agnostic",
            description="reference: controller aimed at the mean training task (lower bound)",
            config_cls=NoConfig,
            make_agent=lambda state, b, c: oracle.task_agnostic(b),
        )
    )


_register_references()
