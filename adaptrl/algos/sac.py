"""Soft actor-critic (Haarnoja et al. 2018, with the automatic temperature of the 2018 follow-up).

Off-policy maximum-entropy RL: a tanh-squashed Gaussian policy, twin Q-functions whose minimum
forms the target (against over-estimation), Polyak-averaged target critics, and a temperature
``alpha`` tuned so that the policy's entropy tracks ``target_entropy``.

As a meta-RL reference it is used two ways (``oracle``):

- *task-agnostic*: trained on the mixture of meta-training tasks, it sees only the observation
  (PEARL's lower reference);
- *oracle*: the task's parameters (its leaves, flattened) are appended to the observation, so it
  is told which task it is in (PEARL's upper reference; marked privileged in reports).

One update (``make_update``) steps ``num_envs`` environments ``steps_per_iteration`` times each
(each environment draws a fresh meta-training task whenever its episode ends), writes the
transitions to one ring buffer, then takes ``updates_per_iteration`` gradient steps in a
``lax.scan``; all of it is one jitted function. The pieces (losses, the tanh-Gaussian, one
gradient step) are public functions because PEARL builds on them.

Actions are handled in the policy's normalised range [-1, 1] (stored in replay, fed to the
critics) and scaled to the environment's box only when stepping it; log-probabilities are those
of the normalised action, so ``target_entropy = -action_dim`` has its usual meaning whatever the
box size (the point robot's box is only ±0.1 wide).

Shapes: N = num_envs, B = batch_size, O = (augmented) observation size, A = action size.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from adaptrl.envs.base import Box, Environment
from adaptrl.nets.core import MLP
from adaptrl.rollout import replay
from adaptrl.rollout.replay import Experience
from adaptrl.rollout.trial import Agent, AgentInput, tree_where
from adaptrl.tasks.benchmark import Benchmark

PyTree = Any

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC hyper-parameters (defaults: small networks that train the point robots in minutes on
    a 2-core CPU).

    Attributes:
      oracle: append the task's parameters to the observation (the privileged upper reference).
      hidden_sizes: hidden layers of the actor and of each critic (ReLU).
      num_envs: environments stepped in parallel, each on its own meta-training task.
      steps_per_iteration: environment steps per environment per update call.
      updates_per_iteration: gradient steps per update call (one ``lax.scan``).
      batch_size: transitions per gradient step.
      buffer_capacity: replay capacity (oldest transitions are overwritten).
      random_steps: environment steps (all envs together) with uniformly random actions before
        the policy acts; gradient steps start once this many transitions are stored.
      learning_rate: Adam step size of actor, critics and temperature.
      gamma: discount.
      tau: Polyak rate of the target critics (target <- tau * online + (1 - tau) * target).
      reward_scale: multiplies rewards before the TD target (PEARL uses 5).
      init_alpha: initial temperature.
      autotune_alpha: tune the temperature to ``target_entropy``; False keeps ``init_alpha``.
      target_entropy: entropy target; None = -action_dim.
      use_training_reward: train on the environment's separate training reward where it defines
        one (``env.training_reward``: the dense reward of the sparse point robot, as PEARL does);
        reported returns are always the environment's reward.
      deterministic_eval: act with the mean action at meta-test.
    """

    oracle: bool = False
    hidden_sizes: tuple[int, ...] = (256, 256)
    num_envs: int = 8
    steps_per_iteration: int = 8
    updates_per_iteration: int = 64
    batch_size: int = 256
    buffer_capacity: int = 100_000
    random_steps: int = 1000
    learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    reward_scale: float = 1.0
    init_alpha: float = 0.1
    autotune_alpha: bool = True
    target_entropy: float | None = None
    use_training_reward: bool = True
    deterministic_eval: bool = True

    def validate(self) -> None:
        for name in ("num_envs", "steps_per_iteration", "updates_per_iteration", "batch_size",
                     "buffer_capacity"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes}")
        if self.num_envs * self.steps_per_iteration > self.buffer_capacity:
            raise ValueError("buffer_capacity must hold at least one iteration of transitions")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 < self.tau <= 1.0:
            raise ValueError("gamma must lie in [0, 1] and tau in (0, 1]")
        if self.learning_rate <= 0 or self.init_alpha <= 0:
            raise ValueError("learning_rate and init_alpha must be > 0")
        if self.random_steps < 0:
            raise ValueError(f"random_steps must be >= 0, got {self.random_steps}")


@dataclasses.dataclass(frozen=True)
class SACOracleConfig(SACConfig):
    """SAC told the task (``adaptrl train sac-oracle``): ``SACConfig`` with ``oracle=True``."""

    oracle: bool = True


# ----------------------------------------------------------------------------------------------
# Networks and the tanh-Gaussian policy


class TanhGaussianActor(nn.Module):
    """obs (..., O) -> (mean, log_std), each (..., A), of the pre-tanh Gaussian."""

    hidden_sizes: tuple[int, ...]
    action_dim: int

    @nn.compact
    def __call__(self, obs):
        h = MLP(self.hidden_sizes, activation="relu")(obs)
        mean = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01))(h)
        log_std = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01))(h)
        # Smoothly squash into [LOG_STD_MIN, LOG_STD_MAX] rather than clipping (no dead gradient).
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)
        return mean, log_std


class TwinCritic(nn.Module):
    """(obs (..., O), action (..., A)) -> Q-values (2, ...), one row per critic."""

    hidden_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs, action], axis=-1)
        # Both critics in one vmapped module: the two matmuls become one batched matmul.
        ensemble = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=2,
        )
        return ensemble((*self.hidden_sizes, 1), activation="relu", activate_last=False)(x)[..., 0]


def tanh_gaussian_sample(key, mean, log_std):
    """Draw ``a = tanh(u)``, ``u ~ N(mean, exp(log_std)^2)``; returns (a (..., A), log p(a) (...)).

    Change of variables: ``log p(a) = log N(u) - sum log(1 - tanh(u)^2)``, with
    ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` for numerical stability.
    """
    std = jnp.exp(log_std)
    noise = jax.random.normal(key, mean.shape)
    u = mean + std * noise
    log_normal = -0.5 * noise**2 - log_std - 0.5 * math.log(2 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(log_normal - log_det, axis=-1)


class Nets(struct.PyTreeNode):
    """The SAC modules (static) and the entropy target."""

    actor: TanhGaussianActor = struct.field(pytree_node=False)
    critic: TwinCritic = struct.field(pytree_node=False)
    target_entropy: float = struct.field(pytree_node=False)


def make_nets(hidden_sizes, action_dim: int, target_entropy: float | None = None) -> Nets:
    return Nets(
        actor=TanhGaussianActor(tuple(hidden_sizes), action_dim),
        critic=TwinCritic(tuple(hidden_sizes)),
        target_entropy=float(-action_dim if target_entropy is None else target_entropy),
    )


# ----------------------------------------------------------------------------------------------
# Losses and one gradient step


@struct.dataclass
class CriticAndExtra:
    """Critic slot of a learner whose critic loss also trains other parameters (PEARL's encoder)."""

    critic: PyTree
    extra: PyTree


@struct.dataclass
class Learner:
    """Parameters and optimizer states of actor, critics and temperature."""

    actor: PyTree
    critic: PyTree
    target_critic: PyTree
    log_alpha: jax.Array  # ()
    actor_opt: PyTree
    critic_opt: PyTree
    alpha_opt: PyTree


def init_learner(key, nets: Nets, optimizer, obs_dim: int, action_dim: int, init_alpha: float,
                 critic_extra: PyTree = None) -> Learner:  # fmt: skip
    """Fresh learner. ``critic_extra``: parameters optimised with the critics (PEARL's encoder);
    the critic slot then holds a ``CriticAndExtra``."""
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((obs_dim,), jnp.float32)
    act = jnp.zeros((action_dim,), jnp.float32)
    actor = nets.actor.init(k_actor, obs)
    critic = nets.critic.init(k_critic, obs, act)
    critic_slot = critic if critic_extra is None else CriticAndExtra(critic, critic_extra)
    log_alpha = jnp.log(jnp.float32(init_alpha))
    return Learner(
        actor=actor,
        critic=critic_slot,
        target_critic=critic,
        log_alpha=log_alpha,
        actor_opt=optimizer.init(actor),
        critic_opt=optimizer.init(critic_slot),
        alpha_opt=optimizer.init(log_alpha),
    )


def td_target(nets: Nets, target_critic, actor, alpha, reward, terminated, next_obs, key, *,
              gamma: float, reward_scale: float):  # fmt: skip
    """Soft TD target (B,): ``s r + gamma (1 - d) (min_j Q'_j(s', a') - alpha log pi(a'|s'))``."""
    mean, log_std = nets.actor.apply(actor, next_obs)
    next_action, next_logp = tanh_gaussian_sample(key, mean, log_std)
    q_next = nets.critic.apply(target_critic, next_obs, next_action).min(axis=0)
    soft_v = q_next - alpha * next_logp
    not_done = 1.0 - terminated.astype(jnp.float32)
    return jax.lax.stop_gradient(reward_scale * reward + gamma * not_done * soft_v)


def critic_loss(nets: Nets, critic, obs, action, target):
    """Sum over the twin critics of 0.5 * mean squared TD error; also returns mean Q."""
    q = nets.critic.apply(critic, obs, action)  # (2, B)
    return 0.5 * jnp.mean((q - target[None]) ** 2, axis=-1).sum(), q.mean()


def actor_loss(nets: Nets, actor, critic, alpha, obs, key):
    """``mean(alpha log pi(a|s) - min_j Q_j(s, a))``, a ~ pi (reparameterised); also mean log pi."""
    mean, log_std = nets.actor.apply(actor, obs)
    action, logp = tanh_gaussian_sample(key, mean, log_std)
    q = nets.critic.apply(critic, obs, action).min(axis=0)
    return jnp.mean(alpha * logp - q), logp.mean()


def alpha_loss(log_alpha, mean_logp, target_entropy: float):
    """Temperature loss: raises alpha while entropy (-mean log pi) is below the target."""
    return -log_alpha * jax.lax.stop_gradient(mean_logp + target_entropy)


def polyak(target, online, tau: float):
    return jax.tree_util.tree_map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def gradient_step(nets: Nets, optimizer, learner: Learner, key, *, critic_loss_fn: Callable,
                  actor_obs, tau: float, autotune_alpha: bool):  # fmt: skip
    """One SAC step given a critic loss closure (shared by SAC and PEARL).

    ``critic_loss_fn(critic_slot, key) -> (loss, info)`` differentiates w.r.t. the whole critic
    slot (critics plus, for PEARL, the encoder). ``actor_obs`` (B, O) are the actor's inputs,
    free of gradients into the encoder (PEARL: the actor's loss does not train it); None takes
    them from the critic loss's ``info["actor_obs"]`` (PEARL's z comes out of that loss).
    """
    k_critic, k_actor = jax.random.split(key)
    critic_grad = jax.value_and_grad(critic_loss_fn, has_aux=True)
    (c_loss, info), grads = critic_grad(learner.critic, k_critic)
    if actor_obs is None:
        info = dict(info)
        actor_obs = jax.lax.stop_gradient(info.pop("actor_obs"))
    updates, critic_opt = optimizer.update(grads, learner.critic_opt, learner.critic)
    critic_slot = optax.apply_updates(learner.critic, updates)
    critic = critic_params(critic_slot)

    alpha = jnp.exp(learner.log_alpha)
    (a_loss, mean_logp), grads = jax.value_and_grad(
        lambda p: actor_loss(nets, p, critic, alpha, actor_obs, k_actor), has_aux=True
    )(learner.actor)
    updates, actor_opt = optimizer.update(grads, learner.actor_opt, learner.actor)
    actor = optax.apply_updates(learner.actor, updates)

    log_alpha, alpha_opt = learner.log_alpha, learner.alpha_opt
    if autotune_alpha:
        grad = jax.grad(alpha_loss)(log_alpha, mean_logp, nets.target_entropy)
        updates, alpha_opt = optimizer.update(grad, alpha_opt, log_alpha)
        log_alpha = optax.apply_updates(log_alpha, updates)

    new = Learner(
        actor=actor,
        critic=critic_slot,
        target_critic=polyak(learner.target_critic, critic, tau),
        log_alpha=log_alpha,
        actor_opt=actor_opt,
        critic_opt=critic_opt,
        alpha_opt=alpha_opt,
    )
    info = dict(info, critic_loss=c_loss, actor_loss=a_loss, alpha=alpha, entropy=-mean_logp)
    return new, info


def critic_params(critic_slot) -> PyTree:
    """The critics' own parameters out of a learner's critic slot."""
    return critic_slot.critic if isinstance(critic_slot, CriticAndExtra) else critic_slot


# ----------------------------------------------------------------------------------------------
# Environment plumbing shared with PEARL


def action_box(env: Environment) -> tuple[jax.Array, jax.Array]:
    """(center, half_width) of the environment's action box; raises for other spaces."""
    space = env.action_space
    if not isinstance(space, Box):
        raise ValueError(
            f"SAC and PEARL need continuous (Box) actions; {type(env).__name__} has "
            f"{type(space).__name__} actions"
        )
    if not (math.isfinite(space.low) and math.isfinite(space.high)):
        raise ValueError("SAC needs a bounded action box to squash actions into")
    return (space.high + space.low) / 2.0, (space.high - space.low) / 2.0


def to_env_action(env: Environment, normalized):
    center, half = action_box(env)
    return center + half * normalized


def from_env_action(env: Environment, action):
    center, half = action_box(env)
    return jnp.clip((action - center) / half, -1.0, 1.0)


def training_reward(env: Environment, next_state, ts, task, enabled: bool = True):
    """The reward to learn from: ``env.training_reward(next_state, task)`` where the environment
    defines one (and ``enabled``), else the reward the agent observes."""
    fn = getattr(env, "training_reward", None)
    if enabled and fn is not None:
        return jnp.asarray(fn(next_state, task), jnp.float32)
    return ts.reward


def task_features(task: PyTree) -> jax.Array:
    """All leaves of one task flattened into one float32 vector (the oracle's extra input)."""
    leaves = jax.tree_util.tree_leaves(task)
    return jnp.concatenate([jnp.asarray(x, jnp.float32).reshape(-1) for x in leaves])


def flat_obs(observation) -> jax.Array:
    return jnp.asarray(observation, jnp.float32).reshape(-1)


def learner_obs(observation, task, oracle: bool) -> jax.Array:
    obs = flat_obs(observation)
    return jnp.concatenate([obs, task_features(task)]) if oracle else obs


# ----------------------------------------------------------------------------------------------
# The SAC algorithm


@struct.dataclass
class SACState:
    learner: Learner
    buffer: replay.ReplayBuffer
    env_state: PyTree  # (N, ...)
    observation: jax.Array  # (N, obs...) raw environment observations
    task: PyTree  # (N, ...) the task each environment is in
    running_return: jax.Array  # (N,) return of each environment's current episode so far
    recent_return: jax.Array  # () mean return of the episodes that ended in the last update
                              # that saw any end (for logging)
    key: jax.Array
    iteration: jax.Array  # () int32
    env_steps: jax.Array  # () int32


def _dims(benchmark: Benchmark, config: SACConfig) -> tuple[int, int]:
    env = benchmark.env
    action_box(env)
    key = jax.random.PRNGKey(0)
    task = benchmark.sample_train_task(key)
    _, ts = env.reset(key, task)
    obs_dim = int(learner_obs(ts.observation, task, config.oracle).shape[0])
    return obs_dim, int(math.prod(env.action_space.shape))


def _optimizer(config) -> optax.GradientTransformation:
    return optax.adam(config.learning_rate)


def init(key: jax.Array, benchmark: Benchmark, config: SACConfig, num_iterations: int) -> SACState:
    """Fresh networks, an empty buffer and ``num_envs`` environments reset on training tasks."""
    del num_iterations
    config.validate()
    env = benchmark.env
    obs_dim, action_dim = _dims(benchmark, config)
    nets = make_nets(config.hidden_sizes, action_dim, config.target_entropy)
    k_learner, k_tasks, k_reset, k_state = jax.random.split(key, 4)
    learner = init_learner(k_learner, nets, _optimizer(config), obs_dim, action_dim,
                           config.init_alpha)  # fmt: skip
    tasks = jax.vmap(benchmark.sample_train_task)(jax.random.split(k_tasks, config.num_envs))
    env_state, ts = jax.vmap(env.reset)(jax.random.split(k_reset, config.num_envs), tasks)
    example = Experience(
        observation=jnp.zeros((obs_dim,)),
        action=jnp.zeros((action_dim,)),
        reward=jnp.float32(0),
        train_reward=jnp.float32(0),
        next_observation=jnp.zeros((obs_dim,)),
        terminated=jnp.bool_(False),
    )
    return SACState(
        learner=learner,
        buffer=replay.init_buffer(example, config.buffer_capacity),
        env_state=env_state,
        observation=ts.observation,
        task=tasks,
        running_return=jnp.zeros((config.num_envs,), jnp.float32),
        recent_return=jnp.float32(0.0),
        key=k_state,
        iteration=jnp.int32(0),
        env_steps=jnp.int32(0),
    )


def make_gradient_step(nets: Nets, config: SACConfig):
    """``step(learner, buffer, key) -> (learner, info)``: one gradient step on a batch drawn
    uniformly from ``buffer``."""
    optimizer = _optimizer(config)

    def step(learner: Learner, buffer: replay.ReplayBuffer, key):
        k_batch, k_step = jax.random.split(key)
        batch = replay.sample(buffer, k_batch, config.batch_size)
        alpha = jnp.exp(learner.log_alpha)

        def loss_fn(critic, k):
            target = td_target(
                nets, learner.target_critic, learner.actor, alpha, batch.train_reward,
                batch.terminated, batch.next_observation, k, gamma=config.gamma,
                reward_scale=config.reward_scale,
            )  # fmt: skip
            loss, q = critic_loss(nets, critic, batch.observation, batch.action, target)
            return loss, {"q_mean": q}

        return gradient_step(nets, optimizer, learner, k_step, critic_loss_fn=loss_fn,
                             actor_obs=batch.observation, tau=config.tau,
                             autotune_alpha=config.autotune_alpha)  # fmt: skip

    return step


def make_update(benchmark: Benchmark, config: SACConfig, num_iterations: int):
    """Jittable ``update(state) -> (state, metrics)``: collect, store, then many gradient steps."""
    del num_iterations
    config.validate()
    env = benchmark.env
    _, action_dim = _dims(benchmark, config)
    nets = make_nets(config.hidden_sizes, action_dim, config.target_entropy)
    N = config.num_envs

    def env_step(actor, random_phase, carry, key):
        """One step of one environment; resets it on a fresh training task when it ends."""
        env_state, obs, task, running = carry
        k_act, k_step, k_task, k_reset = jax.random.split(key, 4)
        x = learner_obs(obs, task, config.oracle)
        mean, log_std = nets.actor.apply(actor, x)
        policy_action, _ = tanh_gaussian_sample(k_act, mean, log_std)
        uniform = jax.random.uniform(k_act, policy_action.shape, minval=-1.0, maxval=1.0)
        action = jnp.where(random_phase, uniform, policy_action)
        next_state, ts = env.step(k_step, env_state, to_env_action(env, action), task)
        exp = Experience(
            observation=x,
            action=action,
            reward=ts.reward,
            train_reward=training_reward(env, next_state, ts, task, config.use_training_reward),
            next_observation=learner_obs(ts.observation, task, config.oracle),
            terminated=ts.terminated,
        )
        running = running + ts.reward
        finished = (ts.done, running)
        new_task = benchmark.sample_train_task(k_task)
        reset_state, reset_ts = env.reset(k_reset, new_task)
        done = ts.done
        carry = (
            tree_where(done, reset_state, next_state),
            jnp.where(done, reset_ts.observation, ts.observation),
            tree_where(done, new_task, task),
            jnp.where(done, 0.0, running),
        )
        return carry, (exp, finished)

    def collect(state: SACState, key):
        def one_step(carry, k):
            random_phase = carry[-1] < config.random_steps
            envs, (exp, fin) = jax.vmap(
                lambda c, kk: env_step(state.learner.actor, random_phase, c, kk)
            )(carry[:-1], jax.random.split(k, N))
            return (*envs, carry[-1] + N), (exp, fin)

        carry0 = (state.env_state, state.observation, state.task, state.running_return,
                  state.env_steps)  # fmt: skip
        carry, (exp, (done, ret)) = jax.lax.scan(
            one_step, carry0, jax.random.split(key, config.steps_per_iteration)
        )
        flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), exp)
        n_done = done.sum()
        mean_return = (ret * done).sum() / jnp.maximum(n_done, 1)
        return carry, flat, jnp.where(n_done > 0, mean_return, state.recent_return)

    sac_step = make_gradient_step(nets, config)

    def grad_step(carry, key):
        learner, buffer, ready = carry
        new, info = sac_step(learner, buffer, key)
        # Before enough data is stored, keep the learner unchanged (jit-friendly gating).
        return (tree_where(ready, new, learner), buffer, ready), info

    def update(state: SACState):
        key, k_collect, k_train = jax.random.split(state.key, 3)
        carry, exp, train_return = collect(state, k_collect)
        env_state, obs, task, running, env_steps = carry
        buffer = replay.add(state.buffer, exp)
        ready = env_steps >= max(config.random_steps, config.batch_size)
        (learner, _, _), info = jax.lax.scan(
            grad_step, (state.learner, buffer, ready),
            jax.random.split(k_train, config.updates_per_iteration),
        )  # fmt: skip
        metrics = jax.tree_util.tree_map(jnp.mean, info)
        metrics["train_episode_return"] = train_return
        new_state = SACState(
            learner=learner, buffer=buffer, env_state=env_state, observation=obs, task=task,
            running_return=running, recent_return=train_return, key=key,
            iteration=state.iteration + 1, env_steps=env_steps,
        )  # fmt: skip
        return new_state, metrics

    return update


def env_steps_per_update(benchmark: Benchmark, config: SACConfig) -> int:
    return config.num_envs * config.steps_per_iteration


def policy_agent(actor_params, nets: Nets, env: Environment, *, oracle: bool, deterministic: bool,
                 name: str) -> Agent:  # fmt: skip
    """A memoryless SAC policy as an ``Agent`` (carry: the task features for the oracle)."""

    def init(key, task):
        del key
        return task_features(task) if oracle else jnp.zeros((0,), jnp.float32)

    def act(key, carry, inp: AgentInput):
        x = flat_obs(inp.observation)
        if oracle:
            x = jnp.concatenate([x, carry])
        mean, log_std = nets.actor.apply(actor_params, x)
        if deterministic:
            action = jnp.tanh(mean)
        else:
            action, _ = tanh_gaussian_sample(key, mean, log_std)
        return carry, to_env_action(env, action), ()

    return Agent(init=init, act=act, name=name, privileged=oracle)


def agent_from_state(state: SACState, benchmark: Benchmark, config: SACConfig) -> Agent:
    _, action_dim = _dims(benchmark, config)
    nets = make_nets(config.hidden_sizes, action_dim, config.target_entropy)
    return policy_agent(
        state.learner.actor, nets, benchmark.env, oracle=config.oracle,
        deterministic=config.deterministic_eval, name="sac-oracle" if config.oracle else "sac",
    )  # fmt: skip


def supports(benchmark: Benchmark) -> bool:
    return isinstance(benchmark.env.action_space, Box)
