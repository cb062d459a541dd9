"""PEARL: probabilistic embeddings for actor-critic meta-RL (Rakelly et al. 2019).

Meta-RL as inference: a permutation-invariant encoder q(z | c) summarises a context ``c`` of
transitions (s, a, r[, s']) of the current task into a latent ``z``; a SAC policy pi(a | s, z)
and critics Q(s, a, z) act and are trained conditioned on it.

- *Encoder* (``adaptrl.nets.encoders``): each transition gives a Gaussian factor; q(z | c) is
  their product ("gaussian", with a KL term ``kl_weight * KL(q(z|c) || N(0, I))``), or ``z`` is
  the mean of per-transition embeddings ("deterministic", no KL).
- *Training signal*: the critics' Bellman loss is differentiated into the encoder (z is what
  the critics need to predict the task's values); the actor's loss is not (``z`` is detached
  there), and neither are the target values, as in PEARL.
- *Per-task replay*: one RL buffer per meta-training task (all its data) and one encoder
  buffer per task holding only the task's most recent prior- and posterior-sampled collection,
  emptied before each new collection, from which context batches are drawn.
- *Data collection* per iteration, for ``tasks_per_iteration`` random training tasks: trajectories
  with ``z ~ N(0, I)`` (``prior_trajectories``, into both buffers), then with ``z`` sampled from
  the posterior of a context drawn from the encoder buffer, re-inferred before every trajectory
  (``posterior_trajectories`` into both buffers; ``extra_posterior_trajectories`` into the RL
  buffer only, so that the policy learns to act on posterior samples). Before the first
  iteration every training task gets ``initial_trajectories`` prior-sampled trajectories.
- *Meta-test* (``agent_from_state``, run by the shared protocol): ``z`` starts as a prior draw;
  after every episode the episode's transitions are added to the context statistics and a new
  ``z`` is drawn from the updated posterior (posterior sampling, trajectory by trajectory). The
  adaptation curve is the per-episode return of that trial.

Rewards: critics learn from ``env.training_reward`` where the environment defines one (PEARL
meta-trains the sparse point robot with the dense reward), the context always holds the reward
the agent observes, and all reported returns are observed returns.

Shapes: K = training tasks, T = meta_batch, B = batch_size, C = context_batch_size,
H = max_episode_steps, L = latent_dim, D = context vector size.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax
from flax import struct

from adaptrl.algos import sac
from adaptrl.envs.base import Environment
from adaptrl.nets import encoders
from adaptrl.rollout import replay
from adaptrl.rollout.replay import Experience
from adaptrl.rollout.trial import Agent, AgentInput, Transition, tree_where
from adaptrl.tasks.benchmark import Benchmark
from adaptrl.tasks.distribution import tree_size

PyTree = Any


@dataclasses.dataclass(frozen=True)
class PEARLConfig:
    """PEARL hyper-parameters. Defaults follow PEARL's public settings where they are affordable
    on a 2-core CPU; narrower networks, fewer and smaller gradient steps (noted per field).

    Attributes:
      latent_dim: size of z (PEARL: 5).
      encoder: "gaussian" (product of Gaussians with a KL term) or "deterministic" (mean).
      encoder_sizes: hidden layers of the per-transition encoder MLP (PEARL: 200x3).
      hidden_sizes: hidden layers of actor and critics (PEARL: 300x3).
      kl_weight: weight of KL(q(z|c) || N(0, I)), summed over the meta-batch's tasks as PEARL does
        (PEARL: 0.1; 1.0 for its sparse point robot, which collapsed the posterior to the prior
        at the number of gradient steps affordable here, see docs/results/pearl.md).
      context_next_obs: put s' into the context vectors (PEARL default: no, (s, a, r) only).
      num_train_tasks: meta-training tasks drawn once per run, each with its own buffers
        (continuous task families only; a finite training set uses all its tasks).
      initial_trajectories: prior-sampled trajectories per training task before training
        (PEARL: 2000 steps = 100 trajectories of 20).
      tasks_per_iteration: training tasks collected from per iteration (PEARL: 5).
      prior_trajectories: trajectories per task per iteration with z ~ prior (PEARL sparse point
        robot: 100 steps = 5 trajectories).
      posterior_trajectories: trajectories with z ~ posterior added to both buffers (PEARL: 0).
      extra_posterior_trajectories: trajectories with z ~ posterior added to the RL buffer only
        (PEARL sparse point robot: 900 steps = 45 trajectories).
      updates_per_iteration: gradient steps per iteration, one ``lax.scan`` (PEARL: 2000;
        fewer here, see docs/results/pearl.md).
      meta_batch: tasks per gradient step (PEARL: 16).
      batch_size: RL transitions per task per gradient step (PEARL: 256).
      context_sampling: how a training context is drawn from a task's encoder buffer:
        "transitions" (PEARL: ``context_batch_size`` transitions uniformly, with replacement) or
        "trajectory" (one whole recent trajectory: the context the agent has at meta-test after
        its first episode; measured no better on the dense robot, see docs/results/pearl.md).
      context_batch_size: context transitions per task per gradient step with "transitions"
        sampling (PEARL: 64; 1024 for the sparse robot).
      buffer_capacity: RL replay capacity per task.
      learning_rate: Adam step size of actor, critics, encoder and temperature (PEARL: 3e-4).
      gamma: discount. None = PEARL's setting: 0.9 for sparse-reward point robots, 0.99 otherwise.
      tau: Polyak rate of the target critics (PEARL: 0.005).
      reward_scale: multiplies training rewards in the TD target (PEARL: 5).
      init_alpha: initial SAC temperature.
      autotune_alpha: tune the temperature to ``target_entropy`` (PEARL keeps alpha = 1 with the
        reward scale instead).
      target_entropy: None = -action_dim.
      use_training_reward: critics learn from ``env.training_reward`` where defined.
      deterministic_eval: act with the policy's mean action at meta-test (PEARL does); z is
        still sampled from the posterior.
    """

    latent_dim: int = 5
    encoder: Literal["gaussian", "deterministic"] = "gaussian"
    encoder_sizes: tuple[int, ...] = (128, 128, 128)
    hidden_sizes: tuple[int, ...] = (128, 128, 128)
    kl_weight: float = 0.1
    context_next_obs: bool = False
    num_train_tasks: int = 100
    initial_trajectories: int = 20
    tasks_per_iteration: int = 5
    prior_trajectories: int = 5
    posterior_trajectories: int = 0
    extra_posterior_trajectories: int = 45
    updates_per_iteration: int = 200
    meta_batch: int = 16
    batch_size: int = 64
    context_sampling: Literal["transitions", "trajectory"] = "transitions"
    context_batch_size: int = 64
    buffer_capacity: int = 5000
    learning_rate: float = 3e-4
    gamma: float | None = None
    tau: float = 0.005
    reward_scale: float = 5.0
    init_alpha: float = 0.1
    autotune_alpha: bool = True
    target_entropy: float | None = None
    use_training_reward: bool = True
    deterministic_eval: bool = True

    def validate(self) -> None:
        if self.context_sampling not in ("transitions", "trajectory"):
            raise ValueError("context_sampling must be 'transitions' or 'trajectory', got "
                             f"{self.context_sampling!r}")
        if self.encoder not in ("gaussian", "deterministic"):
            raise ValueError(f"encoder must be 'gaussian' or 'deterministic', got {self.encoder!r}")
        for name in ("latent_dim", "num_train_tasks", "tasks_per_iteration", "meta_batch",
                     "batch_size", "context_batch_size", "buffer_capacity"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("initial_trajectories", "prior_trajectories", "posterior_trajectories",
                     "extra_posterior_trajectories", "updates_per_iteration"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.prior_trajectories + self.posterior_trajectories < 1:
            raise ValueError("prior_trajectories + posterior_trajectories must be >= 1: the "
                             "encoder buffer needs data to draw context from")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")
        if self.gamma is not None and not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {self.gamma}")
        if self.learning_rate <= 0 or self.init_alpha <= 0 or not 0.0 < self.tau <= 1.0:
            raise ValueError("learning_rate and init_alpha must be > 0 and tau in (0, 1]")
        if not self.hidden_sizes or not self.encoder_sizes:
            raise ValueError("hidden_sizes and encoder_sizes need at least one layer")


def _sparse(env: Environment) -> bool:
    return getattr(env, "reward_type", None) == "sparse"


def resolved_gamma(config: PEARLConfig, env: Environment) -> float:
    if config.gamma is not None:
        return config.gamma
    return 0.9 if _sparse(env) else 0.99


class _Model(struct.PyTreeNode):
    """Static pieces: the SAC nets (on obs ++ z), the encoder and sizes."""

    nets: sac.Nets = struct.field(pytree_node=False)
    encoder: encoders.ContextEncoder = struct.field(pytree_node=False)
    obs_dim: int = struct.field(pytree_node=False)
    action_dim: int = struct.field(pytree_node=False)
    context_dim: int = struct.field(pytree_node=False)


def _model(benchmark: Benchmark, config: PEARLConfig) -> _Model:
    env = benchmark.env
    sac.action_box(env)  # clear error for discrete families
    key = jax.random.PRNGKey(0)
    _, ts = env.reset(key, benchmark.sample_train_task(key))
    obs_dim = int(sac.flat_obs(ts.observation).shape[0])
    action_dim = int(math.prod(env.action_space.shape))
    context_dim = obs_dim + action_dim + 1 + (obs_dim if config.context_next_obs else 0)
    return _Model(
        nets=sac.make_nets(config.hidden_sizes, action_dim, config.target_entropy),
        encoder=encoders.ContextEncoder(tuple(config.encoder_sizes), config.latent_dim,
                                        config.encoder),  # fmt: skip
        obs_dim=obs_dim,
        action_dim=action_dim,
        context_dim=context_dim,
    )


def context_vectors(exp: Experience, next_obs: bool) -> jax.Array:
    """(..., D) context vectors (s, a, r[, s']) with the *observed* reward."""
    parts = [exp.observation, exp.action, exp.reward[..., None]]
    if next_obs:
        parts.append(exp.next_observation)
    return jnp.concatenate(parts, axis=-1)


def infer_posterior(model: _Model, encoder_params, context, mask=None):
    """q(z | c) for one context (N, D) -> (mean, var), each (L,) (var zeros if deterministic)."""
    kind = model.encoder.kind
    mu, var = model.encoder.apply(encoder_params, context)
    return encoders.posterior(encoders.context_stats(mu, var, mask, kind), kind)


@struct.dataclass
class PEARLState:
    learner: sac.Learner  # critic slot: CriticAndExtra(critic, encoder)
    rl_buffers: replay.ReplayBuffer  # (K, capacity, ...)
    enc_buffers: replay.ReplayBuffer  # (K, enc_capacity, ...)
    train_tasks: PyTree  # (K, ...)
    key: jax.Array
    iteration: jax.Array  # () int32
    env_steps: jax.Array  # () int32, including the initial collection


def _rollout(model: _Model, env: Environment, config: PEARLConfig, actor, z, task, key):
    """One stochastic trajectory with a fixed z.

    Returns (Experience (H, ...), valid (H,), observed return, success).

    Observations are stored raw (z is appended at training time, from a fresh context).
    """
    k_reset, k_steps = jax.random.split(key)
    env_state, ts = env.reset(k_reset, task)

    def step(carry, k):
        env_state, obs, alive = carry
        k_act, k_env = jax.random.split(k)
        x = sac.flat_obs(obs)
        mean, log_std = model.nets.actor.apply(actor, jnp.concatenate([x, z]))
        action, _ = sac.tanh_gaussian_sample(k_act, mean, log_std)
        next_state, ts = env.step(k_env, env_state, sac.to_env_action(env, action), task)
        exp = Experience(
            observation=x,
            action=action,
            reward=ts.reward,
            train_reward=sac.training_reward(env, next_state, ts, task, config.use_training_reward),
            next_observation=sac.flat_obs(ts.observation),
            terminated=ts.terminated,
        )
        carry = (
            tree_where(alive, next_state, env_state),
            jnp.where(alive, ts.observation, obs),
            alive & ~ts.done,
        )
        return carry, (exp, alive, ts.success & alive)

    _, (exp, valid, success) = jax.lax.scan(
        step, (env_state, ts.observation, jnp.bool_(True)),
        jax.random.split(k_steps, env.max_episode_steps),
    )  # fmt: skip
    return exp, valid, (exp.reward * valid).sum(), success.any()


def _collect_phase(model, env, config, learner, task, rl_buf, enc_buf, key, *, num: int,
                   posterior: bool, to_encoder_buffer: bool):  # fmt: skip
    """``num`` trajectories in one task (single, unbatched buffers); z from the prior, or from
    the posterior of a context freshly drawn from the encoder buffer before each trajectory."""
    encoder_params = learner.critic.extra

    def one(carry, k):
        rl_buf, enc_buf = carry
        k_ctx, k_z, k_roll = jax.random.split(k, 3)
        if posterior:
            one = jax.tree_util.tree_map(lambda x: x[None], enc_buf)  # a task axis of 1
            ctx = jax.tree_util.tree_map(
                lambda x: x[0], draw_context(env, config, one, jnp.zeros((1,), jnp.int32), k_ctx)
            )
            mask = jnp.broadcast_to(enc_buf.size > 0, ctx.reward.shape)
            mean, var = infer_posterior(
                model, encoder_params, context_vectors(ctx, config.context_next_obs), mask
            )
        else:
            mean = jnp.zeros((config.latent_dim,))
            var = jnp.ones((config.latent_dim,))
        z = encoders.sample_latent(k_z, mean, var)
        exp, valid, ret, success = _rollout(model, env, config, learner.actor, z, task, k_roll)
        rl_buf = replay.add(rl_buf, exp, valid)
        if to_encoder_buffer:
            enc_buf = replay.add(enc_buf, exp, valid)
        return (rl_buf, enc_buf), (ret, success, valid.sum())

    (rl_buf, enc_buf), (ret, success, steps) = jax.lax.scan(
        one, (rl_buf, enc_buf), jax.random.split(key, num)
    )
    return rl_buf, enc_buf, ret, success, steps.sum()


def draw_context(env: Environment, config: PEARLConfig, enc_buffers, idx, key) -> Experience:
    """Training contexts for tasks ``idx`` (k,) from their encoder buffers: (k, C, ...)."""
    if config.context_sampling == "trajectory":
        H = env.max_episode_steps
        return replay.sample_task_windows(enc_buffers, idx, key, H, align=H)
    return replay.sample_tasks(enc_buffers, idx, key, config.context_batch_size)


def _encoder_capacity(benchmark: Benchmark, config: PEARLConfig) -> int:
    recent = config.prior_trajectories + config.posterior_trajectories
    trajs = max(config.initial_trajectories, recent)
    return max(trajs, 1) * benchmark.env.max_episode_steps


def _train_tasks(key, benchmark: Benchmark, config: PEARLConfig) -> PyTree:
    if benchmark.split.train_tasks is not None:
        return benchmark.split.train_tasks
    return jax.vmap(benchmark.sample_train_task)(jax.random.split(key, config.num_train_tasks))


def init(key: jax.Array, benchmark: Benchmark, config: PEARLConfig, num_iterations: int):
    """Networks, empty per-task buffers, then ``initial_trajectories`` prior-sampled
    trajectories in every training task (collected by the initial policy)."""
    del num_iterations
    config.validate()
    env = benchmark.env
    model = _model(benchmark, config)
    k_nets, k_enc, k_tasks, k_collect, k_state = jax.random.split(key, 5)
    encoder_params = model.encoder.init(k_enc, jnp.zeros((model.context_dim,)))
    learner = sac.init_learner(
        k_nets, model.nets, optax.adam(config.learning_rate), model.obs_dim + config.latent_dim,
        model.action_dim, config.init_alpha, critic_extra=encoder_params,
    )  # fmt: skip
    tasks = _train_tasks(k_tasks, benchmark, config)
    num_tasks = tree_size(tasks)
    example = Experience(
        observation=jnp.zeros((model.obs_dim,)),
        action=jnp.zeros((model.action_dim,)),
        reward=jnp.float32(0),
        train_reward=jnp.float32(0),
        next_observation=jnp.zeros((model.obs_dim,)),
        terminated=jnp.bool_(False),
    )
    rl = replay.init_task_buffers(example, config.buffer_capacity, num_tasks)
    enc = replay.init_task_buffers(example, _encoder_capacity(benchmark, config), num_tasks)
    steps = jnp.int32(0)
    if config.initial_trajectories:

        @jax.jit
        def initial(learner, tasks, rl, enc, key):
            rl, enc, _, _, n = jax.vmap(
                lambda t, r, e, k: _collect_phase(
                    model, env, config, learner, t, r, e, k, num=config.initial_trajectories,
                    posterior=False, to_encoder_buffer=True,
                )
            )(tasks, rl, enc, jax.random.split(key, num_tasks))  # fmt: skip
            return rl, enc, n.sum()

        rl, enc, steps = initial(learner, tasks, rl, enc, k_collect)
    return PEARLState(
        learner=learner, rl_buffers=rl, enc_buffers=enc, train_tasks=tasks, key=k_state,
        iteration=jnp.int32(0), env_steps=steps.astype(jnp.int32),
    )  # fmt: skip


def make_gradient_step(benchmark: Benchmark, config: PEARLConfig):
    """``step(learner, rl_buffers, enc_buffers, key) -> (learner, info)``: one PEARL gradient
    step on ``meta_batch`` random training tasks (context from the encoder buffers, RL batch
    from the RL buffers)."""
    env = benchmark.env
    model = _model(benchmark, config)
    nets = model.nets
    optimizer = optax.adam(config.learning_rate)
    gamma = resolved_gamma(config, env)
    kl_weight = config.kl_weight if config.encoder == "gaussian" else 0.0
    num_tasks = tree_size(_train_tasks(jax.random.PRNGKey(0), benchmark, config))
    T = config.meta_batch

    def step(learner, rl_buffers, enc_buffers, key):
        k_idx, k_ctx, k_batch, k_z, k_step = jax.random.split(key, 5)
        idx = jax.random.choice(k_idx, num_tasks, (T,), replace=T > num_tasks)
        ctx = draw_context(env, config, enc_buffers, idx, k_ctx)
        ctx = context_vectors(ctx, config.context_next_obs)  # (T, C, D)
        batch = replay.sample_tasks(rl_buffers, idx, k_batch, config.batch_size)  # (T, B, ...)
        flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)
        alpha = jnp.exp(learner.log_alpha)

        def with_z(obs, z):  # obs (T, B, O), z (T, L) -> (T*B, O+L)
            zb = jnp.broadcast_to(z[:, None, :], obs.shape[:2] + z.shape[-1:])
            return jnp.concatenate([obs, zb], axis=-1).reshape(-1, obs.shape[-1] + z.shape[-1])

        def loss_fn(slot: sac.CriticAndExtra, k):
            mean, var = jax.vmap(lambda c: infer_posterior(model, slot.extra, c))(ctx)
            z = encoders.sample_latent(k_z, mean, var)  # (T, L); gradients reach the encoder
            kl = encoders.kl_to_standard_normal(mean, var).sum() if kl_weight else 0.0
            z_fixed = jax.lax.stop_gradient(z)
            target = sac.td_target(
                nets, learner.target_critic, learner.actor, alpha, flat.train_reward,
                flat.terminated, with_z(batch.next_observation, z_fixed), k, gamma=gamma,
                reward_scale=config.reward_scale,
            )  # fmt: skip
            q_loss, q_mean = sac.critic_loss(
                nets, slot.critic, with_z(batch.observation, z), flat.action, target
            )
            info = {
                "q_mean": q_mean,
                "kl": jnp.asarray(kl, jnp.float32) / T,
                "posterior_std": jnp.sqrt(var).mean(),
                "actor_obs": with_z(batch.observation, z_fixed),
            }
            return q_loss + kl_weight * kl, info

        learner, info = sac.gradient_step(
            nets, optimizer, learner, k_step, critic_loss_fn=loss_fn, actor_obs=None,
            tau=config.tau, autotune_alpha=config.autotune_alpha,
        )  # fmt: skip
        return learner, info

    return step


def make_update(benchmark: Benchmark, config: PEARLConfig, num_iterations: int):
    """Jittable ``update(state) -> (state, metrics)``: one PEARL iteration (collection for
    ``tasks_per_iteration`` tasks, then ``updates_per_iteration`` gradient steps)."""
    del num_iterations
    config.validate()
    env = benchmark.env
    model = _model(benchmark, config)
    num_tasks = tree_size(_train_tasks(jax.random.PRNGKey(0), benchmark, config))
    n_collect = min(config.tasks_per_iteration, num_tasks)

    def collect(state: PEARLState, key):
        k_idx, k_run = jax.random.split(key)
        idx = jax.random.permutation(k_idx, num_tasks)[:n_collect]  # distinct tasks
        tasks = jax.tree_util.tree_map(lambda x: x[idx], state.train_tasks)
        rl = replay.take_tasks(state.rl_buffers, idx)
        enc = replay.clear(replay.take_tasks(state.enc_buffers, idx))  # PEARL: fresh context

        def per_task(task, rl, enc, k):
            k1, k2, k3 = jax.random.split(k, 3)
            out = {}
            steps = 0
            phases = (
                ("prior", k1, config.prior_trajectories, False, True),
                ("posterior", k2, config.posterior_trajectories, True, True),
                ("extra_posterior", k3, config.extra_posterior_trajectories, True, False),
            )
            for name, kk, num, post, to_enc in phases:
                if num == 0:
                    continue
                rl, enc, ret, success, n = _collect_phase(
                    model, env, config, state.learner, task, rl, enc, kk, num=num,
                    posterior=post, to_encoder_buffer=to_enc,
                )  # fmt: skip
                out[f"{name}_return"] = ret.mean()
                out[f"{name}_success"] = success.mean()
                steps = steps + n
            return rl, enc, out, steps

        rl, enc, info, steps = jax.vmap(per_task)(
            tasks, rl, enc, jax.random.split(k_run, n_collect)
        )
        state = state.replace(
            rl_buffers=replay.put_tasks(state.rl_buffers, idx, rl),
            enc_buffers=replay.put_tasks(state.enc_buffers, idx, enc),
            env_steps=state.env_steps + steps.sum().astype(jnp.int32),
        )
        return state, jax.tree_util.tree_map(jnp.mean, info)

    pearl_step = make_gradient_step(benchmark, config)

    def grad_step(carry, key):
        learner, rl_buffers, enc_buffers = carry
        learner, info = pearl_step(learner, rl_buffers, enc_buffers, key)
        return (learner, rl_buffers, enc_buffers), info

    def update(state: PEARLState):
        key, k_collect, k_train = jax.random.split(state.key, 3)
        state, collect_info = collect(state, k_collect)
        (learner, _, _), info = jax.lax.scan(
            grad_step, (state.learner, state.rl_buffers, state.enc_buffers),
            jax.random.split(k_train, config.updates_per_iteration),
        )  # fmt: skip
        metrics = {**jax.tree_util.tree_map(jnp.mean, info), **collect_info}
        return state.replace(learner=learner, key=key, iteration=state.iteration + 1), metrics

    return update


def env_steps_per_update(benchmark: Benchmark, config: PEARLConfig) -> int:
    """Environment steps per iteration (the initial collection in ``init`` comes on top)."""
    trajs = (config.prior_trajectories + config.posterior_trajectories
             + config.extra_posterior_trajectories)  # fmt: skip
    return config.tasks_per_iteration * trajs * benchmark.env.max_episode_steps


@struct.dataclass
class PosteriorCarry:
    """Meta-test memory: the context's sufficient statistics and the current z."""

    stats: encoders.ContextStats
    z: jax.Array  # (L,)


def make_agent(actor_params, encoder_params, model: _Model, env: Environment,
               config: PEARLConfig) -> Agent:  # fmt: skip
    """PEARL at meta-test: act with pi(a | s, z); after each episode add its transitions to the
    context and draw a new z from the posterior (z ~ prior before any context)."""
    kind = config.encoder

    def draw(key, stats):
        mean, var = encoders.posterior(stats, kind)
        return encoders.sample_latent(key, mean, var)

    def init(key, task):
        del task  # never seen: the task is inferred from context
        stats = encoders.ContextStats.empty(config.latent_dim)
        return PosteriorCarry(stats=stats, z=draw(key, stats))

    def act(key, carry: PosteriorCarry, inp: AgentInput):
        x = jnp.concatenate([sac.flat_obs(inp.observation), carry.z])
        mean, log_std = model.nets.actor.apply(actor_params, x)
        if config.deterministic_eval:
            action = jnp.tanh(mean)
        else:
            action, _ = sac.tanh_gaussian_sample(key, mean, log_std)
        return carry, sac.to_env_action(env, action), ()

    def end_episode(key, carry: PosteriorCarry, episode: Transition):
        exp = Experience(
            observation=jax.vmap(sac.flat_obs)(episode.agent_input.observation),
            action=jax.vmap(lambda a: sac.from_env_action(env, a).reshape(-1))(episode.action),
            reward=episode.reward,
            train_reward=episode.reward,
            next_observation=jax.vmap(sac.flat_obs)(episode.next_observation),
            terminated=episode.terminated,
        )
        mu, var = model.encoder.apply(encoder_params, context_vectors(exp, config.context_next_obs))
        stats = carry.stats + encoders.context_stats(mu, var, episode.valid, kind)
        return PosteriorCarry(stats=stats, z=draw(key, stats))

    return Agent(init=init, act=act, end_episode=end_episode, name="pearl")


def agent_from_state(state: PEARLState, benchmark: Benchmark, config: PEARLConfig) -> Agent:
    model = _model(benchmark, config)
    return make_agent(state.learner.actor, state.learner.critic.extra, model, benchmark.env,
                      config)  # fmt: skip
