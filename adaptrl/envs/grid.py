"""Grid navigation to an unobserved goal cell, and the information-gathering "sign" grid.

All grids share one movement rule: actions ``0..4`` = noop, up, right, down, left; a move that
would leave the grid keeps the agent in place. Cells are ``(x, y)`` with ``x`` the column
(0 = left) and ``y`` the row (0 = bottom). Observations are one-hot encodings of the cell.

``GridNavigation`` (registered as ``grid-varibad`` and ``grid-nav2d``):

- ``grid-varibad`` (Zintgraf et al. 2020, public code): 5x5, start (0, 0); the goal is uniform
  over the 21 cells other than (0,0), (0,1), (1,0), (1,1); 15 steps per episode, 4 episodes per
  trial; reward +1 when the agent is on the goal after its move, else -0.1; no termination.
- ``grid-nav2d`` (the seed blog's discrete Nav2D): 11x11, start in the middle of the bottom row,
  (5, 0). The seed does not list its 31 goals; we use the grid's outer border minus the bottom
  row's interior: the 11 top-row cells and the 10 + 10 cells of the left and right columns below
  it (rows 0..9), a set symmetric about the start's column. Reward +1 on reaching the goal, which
  terminates the episode, else 0; 40 steps per episode, 3 episodes per trial.

``SignGrid`` (registered as ``sign-grid``), the "hallway with a sign" of the seeds (DREAM's
read-the-sign / Maze3D idea): a 7x7 room, start at the centre (3, 3), two candidate goals in the
top corners (0, 6) and (6, 6). A sign stands on one cell of the bottom two rows; where it stands is
visible, what it says (which goal pays) is only observed while the agent stands on it. Entering the
correct goal pays +1, the wrong one -1; either terminates the episode; 25 steps per episode,
2 episodes per trial. Tasks = 14 sign cells x 2 goals = 28. The train/test split keeps each sign
cell whole (4 held-out cells, 8 tasks; 10 training cells, 20 tasks): were the two tasks of one
cell split, memorising "sign here -> that corner" would pass for reading. Reading the sign costs a
detour, which pays only for an agent that gathers information first; a sign-blind agent succeeds
half the time. Via the sign the shortest path is 10 to 18 steps; straight to a corner, 6.
Observation: the agent's cell one-hot (49), then the agent's and the sign's ``(x, y)`` scaled to
[0, 1] (2 + 2; coordinates, so held-out sign cells are not unseen input units), then the reading
(2, zero off the sign).

``success`` is "on the (correct) goal this step".

Task pytrees: ``GridGoalTask(goal: (2,) int32)``; ``SignTask(sign: (2,) int32, goal_index: ()``
``int32)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from adaptrl.envs.base import Box, Discrete, Environment, make_timestep

# noop, up, right, down, left as (dx, dy)
MOVES = np.array([[0, 0], [0, 1], [1, 0], [0, -1], [-1, 0]], dtype=np.int32)


@struct.dataclass
class GridGoalTask:
    goal: jax.Array  # (2,) int32 cell


@struct.dataclass
class GridState:
    position: jax.Array  # (2,) int32 cell
    t: jax.Array  # () int32


def move(position, action, width: int, height: int):
    """Apply ``action`` (0..4) to ``position`` (2,) int32, staying inside the grid."""
    nxt = position + jnp.asarray(MOVES)[action]
    return jnp.clip(nxt, 0, jnp.array([width - 1, height - 1], jnp.int32))


def varibad_goals() -> GridGoalTask:
    """The 21 goal cells of the VariBAD 5x5 grid (all but the 2x2 block at the start)."""
    cells = [(x, y) for y in range(5) for x in range(5) if not (x <= 1 and y <= 1)]
    return GridGoalTask(goal=jnp.asarray(cells, jnp.int32))


def nav2d_goals(size: int = 11) -> GridGoalTask:
    """31 goals on an 11x11 grid: the top row plus the left/right columns below it."""
    top = [(x, size - 1) for x in range(size)]
    sides = [(x, y) for y in range(size - 1) for x in (0, size - 1)]
    return GridGoalTask(goal=jnp.asarray(top + sides, jnp.int32))


@dataclasses.dataclass(frozen=True)
class GridNavigation(Environment):
    width: int = 5
    height: int = 5
    start: tuple[int, int] = (0, 0)
    max_episode_steps: int = 15
    goal_reward: float = 1.0
    step_reward: float = -0.1
    terminate_on_goal: bool = False

    def _obs(self, position):
        return jax.nn.one_hot(position[1] * self.width + position[0], self.width * self.height)

    def reset(self, key, task: GridGoalTask):
        del key, task
        pos = jnp.asarray(self.start, jnp.int32)
        return GridState(position=pos, t=jnp.int32(0)), make_timestep(self._obs(pos))

    def step(self, key, state: GridState, action, task: GridGoalTask):
        del key
        self.check_action(action)
        pos = move(state.position, action, self.width, self.height)
        t = state.t + 1
        on_goal = jnp.all(pos == task.goal)
        reward = jnp.where(on_goal, self.goal_reward, self.step_reward)
        ts = make_timestep(
            self._obs(pos),
            reward,
            terminated=on_goal if self.terminate_on_goal else False,
            truncated=t >= self.max_episode_steps,
            success=on_goal,
        )
        return GridState(position=pos, t=t), ts

    @property
    def observation_space(self):
        return Box(0.0, 1.0, (self.width * self.height,))

    @property
    def action_space(self):
        return Discrete(5)


@struct.dataclass
class SignTask:
    sign: jax.Array  # (2,) int32, the sign's cell (visible)
    goal_index: jax.Array  # () int32, which candidate goal pays (read at the sign)


@dataclasses.dataclass(frozen=True)
class SignGrid(Environment):
    width: int = 7
    height: int = 7
    start: tuple[int, int] = (3, 3)
    goals: tuple[tuple[int, int], ...] = ((0, 6), (6, 6))
    max_episode_steps: int = 25
    correct_reward: float = 1.0
    wrong_reward: float = -1.0
    step_reward: float = 0.0
    sign_rows: int = 2  # the sign stands on one of the bottom ``sign_rows`` rows

    @property
    def num_cells(self) -> int:
        return self.width * self.height

    def _cell(self, position):
        return position[1] * self.width + position[0]

    def _xy(self, position):
        # Table lookup, not a division: jit turns ``x / 6`` into a multiply by the reciprocal,
        # which differs from eager in the last bit.
        xs = jnp.asarray(np.arange(self.width) / max(self.width - 1, 1), jnp.float32)
        ys = jnp.asarray(np.arange(self.height) / max(self.height - 1, 1), jnp.float32)
        return jnp.stack([xs[position[0]], ys[position[1]]])

    def _obs(self, position, task: SignTask):
        on_sign = jnp.all(position == task.sign)
        reading = jax.nn.one_hot(task.goal_index, len(self.goals)) * on_sign
        return jnp.concatenate(
            [
                jax.nn.one_hot(self._cell(position), self.num_cells),
                self._xy(position),
                self._xy(task.sign),
                reading,
            ]
        )

    def reset(self, key, task: SignTask):
        del key
        pos = jnp.asarray(self.start, jnp.int32)
        return GridState(position=pos, t=jnp.int32(0)), make_timestep(self._obs(pos, task))

    def step(self, key, state: GridState, action, task: SignTask):
        del key
        self.check_action(action)
        pos = move(state.position, action, self.width, self.height)
        t = state.t + 1
        goals = jnp.asarray(self.goals, jnp.int32)
        at_goal = jnp.all(pos[None, :] == goals, axis=-1)  # (G,)
        correct = at_goal[task.goal_index]
        wrong = jnp.any(at_goal) & ~correct
        reward = jnp.where(
            correct, self.correct_reward, jnp.where(wrong, self.wrong_reward, self.step_reward)
        )
        ts = make_timestep(
            self._obs(pos, task),
            reward,
            terminated=correct | wrong,
            truncated=t >= self.max_episode_steps,
            success=correct,
        )
        return GridState(position=pos, t=t), ts

    @property
    def observation_space(self):
        return Box(0.0, 1.0, (self.num_cells + 4 + len(self.goals),))

    @property
    def action_space(self):
        return Discrete(5)


def sign_grid_tasks(env: SignGrid) -> tuple[SignTask, np.ndarray]:
    """All (sign cell in the bottom ``env.sign_rows`` rows) x (goal index) tasks, batched, and
    each task's group label (its sign cell), for a split that keeps a cell's tasks together."""
    signs, idx, groups = [], [], []
    for y in range(env.sign_rows):
        for x in range(env.width):
            for g in range(len(env.goals)):
                signs.append((x, y))
                idx.append(g)
                groups.append(y * env.width + x)
    tasks = SignTask(sign=jnp.asarray(signs, jnp.int32), goal_index=jnp.asarray(idx, jnp.int32))
    return tasks, np.asarray(groups, np.int64)
