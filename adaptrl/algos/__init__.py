"""Algorithm registry: what ``adaptrl train ALGO`` can run.

Every entry exposes the same small set of functions, so one training loop (``adaptrl.train``)
serves all of them:

- ``config_cls``: a frozen dataclass of hyper-parameters (tyro turns its docstring into --help);
- ``init(key, benchmark, config, num_iterations) -> state`` and
  ``make_update(benchmark, config, num_iterations) -> update`` with ``update(state) -> (state,
  metrics)`` pure and jittable (the PRNG key lives in the state; ``num_iterations`` is the planned
  run length, for schedules);
- ``make_agent(state, benchmark, config) -> Agent`` for the meta-test protocol;
- ``env_steps_per_update(benchmark, config)`` for throughput reporting;
- optionally ``evaluate(benchmark, states, config, *, seeds, num_episodes, exploration_episodes)
  -> MetaTestResult``, which replaces ``meta_test`` for the trained agents when an algorithm's
  own evaluation protocol is the standard one (MAML: returns after k gradient steps).

Non-learning references (random, oracle, bandit heuristics, PSRL) are entries too, with
``trainable=False``: ``train`` then skips straight to evaluation. That keeps every agent on one
path through logging, results and plots.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from adaptrl.algos import maml, pearl, rl2, sac
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
    evaluate: Callable[..., Any] | None = None
    # The training metric shown on the progress bar (and plotted by default).
    headline_metric: str = "trial_return"
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
register(
    AlgorithmSpec(
        name="maml",
        description="MAML: initial policy parameters adapted by policy-gradient steps, TRPO/PPO "
        "outer loop",
        config_cls=maml.MAMLConfig,
        init=maml.init,
        make_update=maml.make_update,
        make_agent=maml.agent_from_state,
        env_steps_per_update=maml.env_steps_per_update,
        evaluate=maml.evaluate_adaptation,
        headline_metric="post_update_return",
    )
)

register(
    AlgorithmSpec(
        name="sac",
        description="SAC: soft actor-critic on the mixture of training tasks (task-agnostic; "
        "--sac.oracle appends the task)",
        config_cls=sac.SACConfig,
        init=sac.init,
        make_update=sac.make_update,
        make_agent=sac.agent_from_state,
        env_steps_per_update=sac.env_steps_per_update,
        supports=sac.supports,
        headline_metric="train_episode_return",
    )
)
register(
    AlgorithmSpec(
        name="sac-oracle",
        description="SAC told the task (its parameters appended to the observation; upper bound)",
        config_cls=sac.SACOracleConfig,
        init=sac.init,
        make_update=sac.make_update,
        make_agent=sac.agent_from_state,
        env_steps_per_update=sac.env_steps_per_update,
        supports=sac.supports,
        headline_metric="train_episode_return",
    )
)
register(
    AlgorithmSpec(
        name="pearl",
        description="PEARL: context encoder q(z|c) + SAC on z, posterior sampling at meta-test",
        config_cls=pearl.PEARLConfig,
        init=pearl.init,
        make_update=pearl.make_update,
        make_agent=pearl.agent_from_state,
        env_steps_per_update=pearl.env_steps_per_update,
        supports=sac.supports,
        headline_metric="extra_posterior_return",
    )
)


@dataclasses.dataclass(frozen=True)
class UCB1Config:
    """UCB1: pull argmax of mean + c * sqrt(ln t / n_i).

    Attributes:
      c: exploration weight (sqrt(2) is Auer et al.'s constant; the RL² paper tuned it per cell).
    """

    c: float = 2.0**0.5


@dataclasses.dataclass(frozen=True)
class EpsilonGreedyConfig:
    """Epsilon-greedy on the posterior mean.

    Attributes:
      epsilon: probability of a uniformly random pull.
    """

    epsilon: float = 0.1

    def validate(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {self.epsilon}")


@dataclasses.dataclass(frozen=True)
class GittinsConfig:
    """Gittins-index policy for Beta-Bernoulli arms.

    Attributes:
      discount: discount of the index (a finite trial of n pulls is approximated by a discount).
    """

    discount: float = 0.9

    def validate(self) -> None:
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount must lie in (0, 1), got {self.discount}")


def _is_bandit(b: Benchmark) -> bool:
    from adaptrl.envs.bandit import BernoulliBandit

    return isinstance(b.env, BernoulliBandit)


@dataclasses.dataclass(frozen=True)
class GoalSearchConfig:
    """Exact-posterior goal search on sparse point navigation (``adaptrl.baselines.goal_search``).

    Attributes:
      strategy: "posterior-sampling" (one posterior draw per episode, driven to: the ceiling of
        PEARL-style exploration) or "sweep" (head for the lowest-angle goal still possible,
        updating every step: a systematic explorer).
    """

    strategy: str = "posterior-sampling"


def _is_sparse_goal_set(b: Benchmark) -> bool:
    from adaptrl.envs.point_nav import PointNavigation

    tasks = getattr(b.distribution, "tasks", None)
    return (isinstance(b.env, PointNavigation) and b.env.reward_type == "sparse"
            and hasattr(tasks, "goal"))  # fmt: skip


def _is_tabular_mdp(b: Benchmark) -> bool:
    from adaptrl.envs.tabular_mdp import TabularMDP

    return isinstance(b.env, TabularMDP)


def _register_references() -> None:
    from adaptrl.baselines import bandits, goal_search, oracle, psrl
    from adaptrl.baselines.random import random_agent

    def ref(name, description, make_agent, config_cls=NoConfig, supports=lambda b: True):
        register(AlgorithmSpec(name=name, description="reference: " + description,
                               config_cls=config_cls, make_agent=make_agent,
                               supports=supports))  # fmt: skip

    ref("random", "uniformly random actions (every family)",
        lambda s, b, c: random_agent(b.env))  # fmt: skip
    ref("thompson", "Thompson sampling, Beta(1,1) prior (bandits)",
        lambda s, b, c: bandits.thompson_sampling(b.env), supports=_is_bandit)  # fmt: skip
    ref("ucb1", "UCB1 (bandits)",
        lambda s, b, c: bandits.ucb1(b.env, c=c.c), UCB1Config, _is_bandit)  # fmt: skip
    ref("eps-greedy", "epsilon-greedy on posterior means (bandits)",
        lambda s, b, c: bandits.epsilon_greedy(b.env, epsilon=c.epsilon),
        EpsilonGreedyConfig, _is_bandit)  # fmt: skip
    ref("greedy", "greedy on posterior means (bandits)",
        lambda s, b, c: bandits.greedy(b.env), supports=_is_bandit)  # fmt: skip
    ref("gittins", "Gittins index with a discount (bandits)",
        lambda s, b, c: bandits.gittins(b.env, discount=c.discount, horizon=b.episodes_per_trial),
        GittinsConfig, _is_bandit)  # fmt: skip
    ref("psrl", "posterior-sampling RL (tabular MDPs)",
        lambda s, b, c: psrl.psrl(b.env), supports=_is_tabular_mdp)  # fmt: skip
    ref("goal-search", "exact-posterior goal search (sparse point navigation)",
        lambda s, b, c: goal_search.goal_search(b, c.strategy), GoalSearchConfig,
        _is_sparse_goal_set)  # fmt: skip

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
