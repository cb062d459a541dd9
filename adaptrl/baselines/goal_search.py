"""Bayesian goal search on sparse-reward point navigation: the exploration ceilings for meta-RL.

In the sparse point robot (PEARL's benchmark: goals on the unit half-circle, reward only within
``sparse_radius`` of the goal) an agent learns about the goal only by visiting places. Both agents
here know the task distribution exactly (the benchmark's goal set, a uniform prior over it) and
keep the exact posterior: the set of candidate goals consistent with every (position, reward)
seen so far. A zero reward at ``p`` rules out every goal within the radius of ``p``; a positive
reward ``1 - d`` leaves only the goals at distance ``d`` from ``p``. Once the reward has been seen
they drive to the (then unique) goal. They differ in how they explore:

- ``"posterior-sampling"``: at the start of each episode draw one candidate from the posterior and
  drive straight to it for the whole episode (Thompson sampling over goals). This is what PEARL
  does at meta-test with z ~ q(z | context), so it is the *ceiling* of PEARL-style exploration:
  a perfectly trained PEARL with an exact posterior scores this.
- ``"sweep"``: always head for the candidate with the smallest angle that is still possible,
  updating the posterior at every step, so the robot reaches the circle and then sweeps along it.
  A simple systematic explorer: how much better than posterior sampling exploration can be.

Both are non-learning references (not privileged: they never read the task).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from adaptrl.envs.point_nav import PointNavigation
from adaptrl.rollout.trial import Agent, AgentInput, Transition
from adaptrl.tasks.benchmark import Benchmark

Strategy = Literal["posterior-sampling", "sweep"]
# A positive sparse reward 1 - d gives the distance d exactly; float32 round-off only.
_DISTANCE_TOL = 1e-3


@struct.dataclass
class GoalSearchCarry:
    alive: jax.Array  # (K,) bool: candidates consistent with everything seen in this trial
    target: jax.Array  # (2,) float32: where the agent drives in this episode


def candidate_goals(benchmark: Benchmark) -> np.ndarray:
    """All goals of the benchmark's finite task set (train and test), sorted by angle: (K, 2)."""
    tasks = getattr(benchmark.distribution, "tasks", None)
    if tasks is None or not hasattr(tasks, "goal"):
        raise ValueError(
            f"goal search needs a finite set of goal tasks; {benchmark.name!r} has "
            f"{type(benchmark.distribution).__name__}"
        )
    goals = np.asarray(tasks.goal, np.float32).reshape(-1, 2)
    # Angles in [0, 2pi): the float32 goal at angle pi has a tiny negative y, which arctan2 would
    # put at -pi, i.e. first instead of last.
    angles = np.mod(np.arctan2(goals[:, 1], goals[:, 0]) + 1e-6, 2 * np.pi)
    return goals[np.argsort(angles, kind="stable")]


def update_posterior(env: PointNavigation, candidates, alive, position, reward, valid):
    """Condition ``alive`` (K,) on having received ``reward`` on arriving at ``position`` (2,)."""
    dist = jnp.linalg.norm(candidates - position, axis=-1)
    hit = reward > 0
    # Misses rule out only goals clearly inside the radius (round-off at the boundary must never
    # remove the true goal); an emptied posterior (a goal outside the candidate set) falls back
    # to the prior rather than to an arbitrary candidate.
    at_distance = jnp.abs(dist - (1.0 - reward)) <= _DISTANCE_TOL
    consistent = jnp.where(hit, at_distance, dist > env.sparse_radius - _DISTANCE_TOL)
    new = alive & consistent
    new = jnp.where(new.any(), new, jnp.ones_like(new))
    return jnp.where(valid, new, alive)


def goal_search(benchmark: Benchmark, strategy: Strategy = "posterior-sampling") -> Agent:
    """Exact-posterior goal search on a sparse ``PointNavigation`` benchmark (see module doc)."""
    env = benchmark.env
    if not isinstance(env, PointNavigation) or env.reward_type != "sparse":
        raise ValueError(
            f"goal search needs sparse-reward point navigation (e.g. point-nav-sparse); "
            f"{benchmark.name!r} is not"
        )
    if strategy not in ("posterior-sampling", "sweep"):
        raise ValueError(f"strategy must be 'posterior-sampling' or 'sweep', got {strategy!r}")
    cands = jnp.asarray(candidate_goals(benchmark))
    k = cands.shape[0]

    def choose(key, alive):
        """Posterior-sampling target: a uniformly drawn surviving candidate."""
        logits = jnp.where(alive, 0.0, -jnp.inf)
        return cands[jax.random.categorical(key, logits)]

    def init(key, task):
        del task
        alive = jnp.ones((k,), bool)
        return GoalSearchCarry(alive=alive, target=choose(key, alive))

    def act(key, carry: GoalSearchCarry, inp: AgentInput):
        del key
        pos = inp.observation
        # prev_reward belongs to the current position except right after a reset (the last
        # step of the previous episode was processed in end_episode).
        fresh = ~(inp.first | inp.prev_done)
        alive = update_posterior(env, cands, carry.alive, pos, inp.prev_reward, fresh)
        found = jnp.sum(alive) == 1  # the goal is identified: go there
        lowest = cands[jnp.argmax(alive)]  # alive is sorted by angle: first True = lowest angle
        explore = lowest if strategy == "sweep" else carry.target
        target = jnp.where(found, lowest, explore)
        action = jnp.clip(target - pos, -env.max_action, env.max_action)
        return carry.replace(alive=alive, target=target), action, ()

    def end_episode(key, carry: GoalSearchCarry, episode: Transition):
        def body(alive, tr):
            alive = update_posterior(env, cands, alive, tr.next_observation, tr.reward, tr.valid)
            return alive, None

        alive, _ = jax.lax.scan(body, carry.alive, episode)
        return GoalSearchCarry(alive=alive, target=choose(key, alive))

    return Agent(init=init, act=act, end_episode=end_episode, name=f"goal-search-{strategy}")
