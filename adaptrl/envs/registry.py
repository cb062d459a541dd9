"""Names for every task-family variant: ``adaptrl.make("bandit-k5-n10")``.

Each entry builds a ``Benchmark`` (environment + task distribution + disjoint train/test split +
episodes per trial). ``make`` accepts overrides for the split and the trial length.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable

from adaptrl.envs import mujoco_tasks as _mujoco_tasks
from adaptrl.envs.bandit import BernoulliBandit, sample_bandit_task, sample_mirrored_task
from adaptrl.envs.grid import (
    GridNavigation,
    SignGrid,
    nav2d_goals,
    sign_grid_tasks,
    varibad_goals,
)
from adaptrl.envs.point_nav import PointNavigation, half_circle_goals, sample_uniform_goal
from adaptrl.envs.tabular_mdp import TabularMDP, sample_tabular_mdp_task
from adaptrl.tasks.benchmark import Benchmark
from adaptrl.tasks.distribution import ContinuousTasks, FiniteTasks, split_tasks


class UnknownEnvError(ValueError):
    """Raised by ``make`` for a name that is not registered."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    build: Callable[..., tuple]  # () -> (env, distribution, episodes_per_trial, success_defined)
    description: str
    test_fraction: float = 0.25
    num_test_tasks: int = 1000


_REGISTRY: dict[str, _Spec] = {}


def register(name: str, build: Callable[[], tuple], description: str, **split_kwargs) -> None:
    """Register ``build() -> (env, distribution, episodes_per_trial, success_defined)``."""
    if name in _REGISTRY:
        raise ValueError(f"environment {name!r} is already registered")
    _REGISTRY[name] = _Spec(build, description, **split_kwargs)


def list_envs() -> dict[str, str]:
    """Registered names and their one-line descriptions, sorted by name."""
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def make(
    name: str,
    *,
    split_seed: int = 0,
    episodes_per_trial: int | None = None,
    num_test_tasks: int | None = None,
) -> Benchmark:
    """Build the benchmark registered as ``name``.

    Args:
      name: a name from ``adaptrl.list_envs()`` (``adaptrl list`` on the command line).
      split_seed: seed of the disjoint meta-train / meta-test split.
      episodes_per_trial: override the family's default trial length.
      num_test_tasks: number of held-out tasks for continuous distributions.
    """
    # Benchmarks are immutable (frozen config, JAX arrays), so equal requests share one object
    # and the held-out task batch is sampled (and its sampler compiled) only once per process.
    return _make_cached(name, split_seed, episodes_per_trial, num_test_tasks)


@functools.lru_cache(maxsize=64)
def _make_cached(
    name: str,
    split_seed: int = 0,
    episodes_per_trial: int | None = None,
    num_test_tasks: int | None = None,
) -> Benchmark:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=4, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownEnvError(
            f"unknown environment {name!r}.{hint} Run `adaptrl list` to see all names."
        )
    spec = _REGISTRY[name]
    env, dist, episodes, success_defined = spec.build()
    if episodes_per_trial is not None:
        if episodes_per_trial < 1:
            raise ValueError(f"episodes_per_trial must be >= 1, got {episodes_per_trial}")
        episodes = episodes_per_trial
    n_test = spec.num_test_tasks if num_test_tasks is None else num_test_tasks
    if n_test < 1:
        raise ValueError(f"num_test_tasks must be >= 1, got {n_test}")
    split = split_tasks(
        dist, seed=split_seed, num_test_tasks=n_test, test_fraction=spec.test_fraction
    )
    return Benchmark(
        name=name,
        env=env,
        split=split,
        episodes_per_trial=episodes,
        description=spec.description,
        success_defined=success_defined,
    )


def _bandit(k: int, n: int):
    return (
        BernoulliBandit(num_arms=k),
        ContinuousTasks(functools.partial(sample_bandit_task, num_arms=k), f"p_i~U[0,1], k={k}"),
        n,
        False,
    )


for _k in (2, 5, 10, 50):
    for _n in (10, 100, 500):
        if _k == 2 and _n != 10:
            continue
        register(
            f"bandit-k{_k}-n{_n}",
            functools.partial(_bandit, _k, _n),
            f"Bernoulli bandit, {_k} arms p~U[0,1], {_n} pulls per trial (RL2 Table 1)",
        )
register(
    "bandit-k2-mirror-n20",
    lambda: (
        BernoulliBandit(num_arms=2),
        ContinuousTasks(sample_mirrored_task, "p = 0.5 +- d, d~U[0.1,0.3]"),
        20,
        False,
    ),
    "2 arms paying 0.5+d and 0.5-d (d~U[0.1,0.3]), 20 pulls: memory beats win-stay/lose-shift",
)


def _mdp(n: int):
    return (
        TabularMDP(),
        ContinuousTasks(
            functools.partial(sample_tabular_mdp_task, num_states=10, num_actions=5),
            "mu~N(1,1), P~Dir(1)",
        ),
        n,
        False,
    )


for _n in (10, 25, 50, 75, 100):
    register(
        f"tabular-mdp-n{_n}",
        functools.partial(_mdp, _n),
        f"random tabular MDP |S|=10 |A|=5 T=10, {_n} episodes per trial (RL2 Table 2)",
    )

register(
    "point-nav",
    lambda: (
        PointNavigation(max_episode_steps=100, goal_tolerance=0.01, success_radius=0.01),
        ContinuousTasks(functools.partial(sample_uniform_goal, low=-0.5, high=0.5)),
        2,
        True,
    ),
    "2D point navigation, dense, goal~U[-0.5,0.5]^2, H=100 (MAML Table 4)",
    num_test_tasks=40,
)
register(
    "point-nav-dense",
    lambda: (
        PointNavigation(
            max_episode_steps=20,
            goal_tolerance=None,
            success_radius=0.2,
            start="uniform",
            start_range=1.0,
        ),
        ContinuousTasks(functools.partial(sample_uniform_goal, low=-1.0, high=1.0)),
        3,
        True,
    ),
    "2D point robot, dense, goal~U[-1,1]^2, H=20 (PEARL)",
    num_test_tasks=100,
)
register(
    "point-nav-sparse",
    lambda: (
        PointNavigation(
            max_episode_steps=20,
            reward_type="sparse",
            sparse_radius=0.2,
            goal_tolerance=None,
            success_radius=0.2,
            training_reward_type="dense",
        ),
        FiniteTasks(half_circle_goals(100), "100 goals on the upper unit half-circle"),
        3,
        True,
    ),
    "2D point robot, sparse (r within 0.2), goals on the half-circle, 80/20 split (PEARL)",
    test_fraction=0.2,
)
register(
    "grid-varibad",
    lambda: (GridNavigation(), FiniteTasks(varibad_goals(), "21 goal cells"), 4, True),
    "5x5 gridworld, 21 goals, 4 episodes x 15 steps (VariBAD)",
)
register(
    "grid-nav2d",
    lambda: (
        GridNavigation(
            width=11,
            height=11,
            start=(5, 0),
            max_episode_steps=40,
            goal_reward=1.0,
            step_reward=0.0,
            terminate_on_goal=True,
        ),
        FiniteTasks(nav2d_goals(11), "31 border goal cells"),
        3,
        True,
    ),
    "11x11 grid, start bottom-middle, 31 goals, 3 episodes x 40 steps (Nav2D)",
)


def _sign():
    env = SignGrid()
    tasks, groups = sign_grid_tasks(env)
    return env, FiniteTasks(tasks, "14 sign cells x 2 goals", groups=groups), 2, True


register(
    "sign-grid",
    _sign,
    "7x7 room: read the sign to learn which of 2 corner goals pays, 2 episodes x 25 steps",
    test_fraction=0.3,
)


# MuJoCo locomotion families (optional extra): registering them imports no MuJoCo; building one
# without the extra raises an error that says `pip install -e ".[mujoco]"`.
_mujoco_tasks.register_all(register)
