"""RL²: black-box meta-RL with a recurrent policy (Duan et al. 2016; Wang et al. 2016).

The policy is a memory core (GRU or LSTM) fed, at every step, the observation together with the
previous action, the previous reward and the "previous step ended an episode" flag. Its hidden
state is created once per *trial* and is **not** reset between the episodes of the trial, so what
it learned about the task in early episodes is available in later ones. Training maximises the
return of the whole trial with PPO: advantages are computed by GAE over the trial as one sequence
(bootstrapping across episode boundaries; only the end of the trial is terminal), and the loss is
evaluated by replaying each trial through the core from its initial state (full backpropagation
through time). One update: collect ``num_trials`` trials on freshly sampled meta-training tasks,
vmapped, then ``ppo_epochs`` passes over minibatches of trials; everything jitted.

Shapes: B = num_trials, L = episodes_per_trial * max_episode_steps (padded steps masked).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from adaptrl.envs.base import Discrete, Environment
from adaptrl.nets.core import MLP, initial_carry, make_core
from adaptrl.rollout.trial import Agent, AgentInput, initial_agent_input, run_trial, tree_where
from adaptrl.tasks.benchmark import Benchmark

PyTree = Any


@dataclasses.dataclass(frozen=True)
class RL2Config:
    """RL² hyper-parameters (defaults train bandits and small MDPs on a laptop CPU).

    Attributes:
      core: memory core, "gru" or "lstm".
      hidden_size: width of the memory core.
      embed_sizes: MLP applied to the step input before the core.
      num_trials: trials (each on its own sampled meta-training task) collected per update.
      learning_rate: Adam step size.
      anneal_lr: decay the learning rate linearly to 0 over the run's ``--iterations``.
      gamma: discount inside the trial (the RL² paper uses 0.99 for bandits/MDPs).
      gae_lambda: GAE lambda over the whole trial.
      clip_eps: PPO ratio clip.
      ppo_epochs: passes over the collected trials per update.
      num_minibatches: minibatches of whole trials per epoch.
      entropy_coef: entropy bonus weight.
      value_coef: value loss weight.
      max_grad_norm: global gradient-norm clip.
      init_log_std: initial log standard deviation of Gaussian (continuous) actions.
      normalize_advantages: standardise advantages per minibatch.
      memory: keep the core's state between steps. False is the "no memory" ablation: the same
        network and inputs (including previous action and reward), memory wiped every step.
      separate_value: give the value function its own embedding and memory core (same sizes)
        instead of a head on the policy's core, as the RL² authors' code and later
        reimplementations do: value errors then never shape the policy's memory.
      target_kl: stop an update's remaining PPO epochs once an epoch's mean approximate KL
        between the old and new policy exceeds this (the authors' code stops at 0.01); None
        runs every epoch.
    """

    core: Literal["gru", "lstm"] = "gru"
    hidden_size: int = 128
    embed_sizes: tuple[int, ...] = (64,)
    num_trials: int = 256
    learning_rate: float = 1e-3
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ppo_epochs: int = 4
    num_minibatches: int = 4
    entropy_coef: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    init_log_std: float = -0.5
    normalize_advantages: bool = True
    memory: bool = True
    separate_value: bool = False
    target_kl: float | None = None

    def validate(self) -> None:
        if self.core not in ("gru", "lstm"):
            raise ValueError(f"core must be 'gru' or 'lstm', got {self.core!r}")
        for name in ("hidden_size", "num_trials", "ppo_epochs", "num_minibatches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_trials % self.num_minibatches:
            raise ValueError(
                f"num_trials ({self.num_trials}) must be divisible by num_minibatches "
                f"({self.num_minibatches})"
            )
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError("gamma and gae_lambda must lie in [0, 1]")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.target_kl is not None and self.target_kl <= 0:
            raise ValueError(f"target_kl must be > 0 or None, got {self.target_kl}")


class RL2Network(nn.Module):
    """One step of the recurrent actor-critic: ``(carry, features) -> (carry, head, value)``.

    ``head`` is the logits (discrete) or the Gaussian mean (continuous). With
    ``separate_value`` the carry is a pair (policy core state, value core state).
    """

    core: str
    hidden_size: int
    embed_sizes: tuple[int, ...]
    action_dim: int
    discrete: bool
    init_log_std: float
    use_memory: bool = True
    separate_value: bool = False

    def setup(self):
        self.embed = MLP(self.embed_sizes, activation="tanh")
        self.memory = make_core(self.core, self.hidden_size)
        if self.separate_value:
            self.value_embed = MLP(self.embed_sizes, activation="tanh")
            self.value_memory = make_core(self.core, self.hidden_size)
        small = nn.initializers.orthogonal(0.01)
        self.policy_head = nn.Dense(self.action_dim, kernel_init=small)
        self.value_head = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))
        if not self.discrete:
            self.log_std = self.param(
                "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
            )

    def __call__(self, carry, features):
        if not self.use_memory:
            carry = self.initial_carry()
        if self.separate_value:
            policy_carry, value_carry = carry
            policy_carry, h = self.memory(policy_carry, self.embed(features))
            value_carry, hv = self.value_memory(value_carry, self.value_embed(features))
            return (policy_carry, value_carry), self.policy_head(h), self.value_head(hv)[..., 0]
        carry, h = self.memory(carry, self.embed(features))
        return carry, self.policy_head(h), self.value_head(h)[..., 0]

    def initial_carry(self):
        one = initial_carry(self.core, self.hidden_size)
        return (one, one) if self.separate_value else one


def step_features(env: Environment, inp: AgentInput) -> jax.Array:
    """(obs_dim + action_features + 2,) input of one step: obs, prev action, prev reward, done."""
    space = env.action_space
    if isinstance(space, Discrete):
        prev_a = jax.nn.one_hot(inp.prev_action, space.n)
    else:
        prev_a = jnp.asarray(inp.prev_action, jnp.float32).reshape(-1)
    return jnp.concatenate(
        [
            jnp.asarray(inp.observation, jnp.float32).reshape(-1),
            prev_a,
            inp.prev_reward[None].astype(jnp.float32),
            inp.prev_done[None].astype(jnp.float32),
        ]
    )


def make_network(env: Environment, config: RL2Config) -> RL2Network:
    space = env.action_space
    discrete = isinstance(space, Discrete)
    return RL2Network(
        core=config.core,
        hidden_size=config.hidden_size,
        embed_sizes=tuple(config.embed_sizes),
        action_dim=space.n if discrete else math.prod(space.shape),
        discrete=discrete,
        init_log_std=config.init_log_std,
        use_memory=config.memory,
        separate_value=config.separate_value,
    )


def _log_prob_entropy(net: RL2Network, params, head, action):
    """Log-probability of ``action`` and entropy of the policy with output ``head``."""
    if net.discrete:
        logp_all = jax.nn.log_softmax(head)
        logp = jnp.take_along_axis(logp_all, action[..., None].astype(jnp.int32), -1)[..., 0]
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1)
        return logp, entropy
    log_std = params["params"]["log_std"]
    z = (action - head) / jnp.exp(log_std)
    logp = (-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)
    entropy = jnp.broadcast_to((log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e)).sum(), logp.shape)
    return logp, entropy


def _sample(net: RL2Network, params, head, key, deterministic: bool):
    if net.discrete:
        if deterministic:
            return jnp.argmax(head, -1).astype(jnp.int32)
        return jax.random.categorical(key, head).astype(jnp.int32)
    if deterministic:
        return head
    std = jnp.exp(params["params"]["log_std"])
    return head + std * jax.random.normal(key, head.shape)


def make_agent(
    params: PyTree, env: Environment, config: RL2Config, deterministic: bool = False
) -> Agent:
    """The RL² policy as an ``Agent``: carry = core state, kept across episodes of a trial.

    ``extras`` per step = ``(log_prob, value)`` of the taken action, used by training.
    """
    net = make_network(env, config)

    def init(key, task):
        del key, task  # memory starts empty; the task is never seen
        return net.initial_carry()

    def act(key, carry, inp: AgentInput):
        carry, head, value = net.apply(params, carry, step_features(env, inp))
        action = _sample(net, params, head, key, deterministic)
        logp, _ = _log_prob_entropy(net, params, head, action)
        return carry, action, (logp, value)

    return Agent(init=init, act=act, name="rl2")


@struct.dataclass
class RL2State:
    params: PyTree
    opt_state: PyTree
    key: jax.Array
    iteration: jax.Array  # () int32, completed updates


def _optimizer(config: RL2Config, num_iterations: int):
    if config.anneal_lr:
        steps = max(num_iterations, 1) * config.ppo_epochs * config.num_minibatches
        lr = optax.linear_schedule(config.learning_rate, 0.0, steps)
    else:
        lr = config.learning_rate
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))


def _advance_schedule(opt_state):
    """``opt_state`` with every learning-rate schedule's step count advanced by one."""
    is_schedule = lambda s: isinstance(s, optax.ScaleByScheduleState)  # noqa: E731
    return jax.tree_util.tree_map(
        lambda s: s._replace(count=s.count + 1) if is_schedule(s) else s,
        opt_state, is_leaf=is_schedule,
    )  # fmt: skip


def init(key: jax.Array, benchmark: Benchmark, config: RL2Config, num_iterations: int) -> RL2State:
    """Fresh parameters and optimizer state."""
    config.validate()
    env = benchmark.env
    net = make_network(env, config)
    k_params, k_state = jax.random.split(key)
    _, ts = env.reset(k_params, benchmark.sample_train_task(k_params))
    dummy = step_features(env, initial_agent_input(env, ts.observation))
    params = net.init(k_params, net.initial_carry(), dummy)
    return RL2State(
        params=params,
        opt_state=_optimizer(config, num_iterations).init(params),
        key=k_state,
        iteration=jnp.int32(0),
    )


def trial_gae(reward, value, valid, gamma: float, lam: float):
    """GAE over one trial treated as a single sequence.

    Args:
      reward, value: (L,) float32; valid: (L,) bool (False on padding steps).
    Returns:
      (advantage, return_target), each (L,), zero on padding steps. Padding steps are skipped:
      the successor of the last valid step of an episode is the first step of the next episode,
      and the step after the trial's last valid step has value 0 (the trial ends).
    """

    def body(carry, x):
        next_value, next_adv = carry
        r, v, ok = x
        delta = r + gamma * next_value - v
        adv = delta + gamma * lam * next_adv
        carry = (jnp.where(ok, v, next_value), jnp.where(ok, adv, next_adv))
        return carry, jnp.where(ok, adv, 0.0)

    _, adv = jax.lax.scan(body, (jnp.float32(0.0), jnp.float32(0.0)), (reward, value, valid),
                          reverse=True)
    return adv, jnp.where(valid, adv + value, 0.0)


def _replay(net: RL2Network, params, features, valid):
    """Run the core over one trial's inputs (L, F) from its initial state -> (heads, values)."""

    def body(carry, x):
        f, ok = x
        new_carry, head, value = net.apply(params, carry, f)
        carry = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new_carry, carry)
        return carry, (head, value)

    _, (heads, values) = jax.lax.scan(body, net.initial_carry(), (features, valid))
    return heads, values


def make_update(benchmark: Benchmark, config: RL2Config, num_iterations: int):
    """Return a jittable ``update(state) -> (state, metrics)`` for this benchmark and config.

    ``num_iterations`` is the planned run length (the learning-rate schedule spans it).
    """
    config.validate()
    env = benchmark.env
    net = make_network(env, config)
    optimizer = _optimizer(config, num_iterations)
    episodes = benchmark.episodes_per_trial
    B, M = config.num_trials, config.num_minibatches

    def collect(params, key):
        k_tasks, k_trials = jax.random.split(key)
        tasks = jax.vmap(benchmark.sample_train_task)(jax.random.split(k_tasks, B))
        agent = make_agent(params, env, config)
        return jax.vmap(lambda t, k: run_trial(env, agent, t, k, episodes))(
            tasks, jax.random.split(k_trials, B)
        )

    def loss_fn(params, batch):
        features, actions, valid, old_logp, adv, target = batch
        heads, values = jax.vmap(functools.partial(_replay, net, params))(features, valid)
        logp, entropy = _log_prob_entropy(net, params, heads, actions)
        mask = valid.astype(jnp.float32)
        denom = jnp.maximum(mask.sum(), 1.0)
        if config.normalize_advantages:
            mean = (adv * mask).sum() / denom
            std = jnp.sqrt((((adv - mean) * mask) ** 2).sum() / denom + 1e-8)
            adv = (adv - mean) / std
        ratio = jnp.exp(logp - old_logp)
        clipped = jnp.clip(ratio, 1 - config.clip_eps, 1 + config.clip_eps)
        pg = -(jnp.minimum(ratio * adv, clipped * adv) * mask).sum() / denom
        vf = 0.5 * (((values - target) ** 2) * mask).sum() / denom
        ent = (entropy * mask).sum() / denom
        loss = pg + config.value_coef * vf - config.entropy_coef * ent
        approx_kl = (((ratio - 1) - (logp - old_logp)) * mask).sum() / denom
        return loss, {"policy_loss": pg, "value_loss": vf, "entropy": ent, "approx_kl": approx_kl}

    def update(state: RL2State):
        key, k_collect, k_perm = jax.random.split(state.key, 3)
        trial = collect(state.params, k_collect)
        tr = trial.transitions  # leaves (B, E, T, ...)
        flat = jax.tree_util.tree_map(lambda x: x.reshape((B, -1) + x.shape[3:]), tr)
        features = jax.vmap(jax.vmap(functools.partial(step_features, env)))(flat.agent_input)
        old_logp, old_value = flat.extras
        adv, target = jax.vmap(
            lambda r, v, m: trial_gae(r, v, m, config.gamma, config.gae_lambda)
        )(flat.reward, old_value, flat.valid)
        data = (features, flat.action, flat.valid, old_logp, adv, target)

        def epoch(carry, k):
            params, opt_state, stopped = carry
            perm = jax.random.permutation(k, B).reshape(M, B // M)

            def minibatch(carry, idx):
                params, opt_state = carry
                batch = jax.tree_util.tree_map(lambda x: x[idx], data)
                (_, info), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
                updates, new_opt_state = optimizer.update(grads, opt_state, params)
                new = (optax.apply_updates(params, updates), new_opt_state)
                # After an early stop the remaining epochs leave parameters and Adam's moments
                # alone; the learning-rate schedule still advances, so annealing ends on time.
                return tree_where(stopped, (params, _advance_schedule(opt_state)), new), info

            (params, opt_state), info = jax.lax.scan(minibatch, (params, opt_state), perm)
            info["epochs_run"] = jnp.where(stopped, 0.0, 1.0)
            if config.target_kl is not None:
                stopped = stopped | (info["approx_kl"].mean() > config.target_kl)
            return (params, opt_state, stopped), info

        (params, opt_state, _), info = jax.lax.scan(
            epoch, (state.params, state.opt_state, jnp.bool_(False)),
            jax.random.split(k_perm, config.ppo_epochs),
        )  # fmt: skip
        ran = info.pop("epochs_run")  # (epochs,) 1.0 for epochs that updated the parameters
        # Losses and KL of the epochs that ran (the first one always does).
        metrics = jax.tree_util.tree_map(lambda x: (x.mean(-1) * ran).sum() / ran.sum(), info)
        metrics["epochs_run"] = ran.sum()
        metrics["trial_return"] = trial.episode_return.sum(-1).mean()
        metrics["first_episode_return"] = trial.episode_return[:, 0].mean()
        metrics["last_episode_return"] = trial.episode_return[:, -1].mean()
        new_state = RL2State(
            params=params, opt_state=opt_state, key=key, iteration=state.iteration + 1
        )
        return new_state, metrics

    return update


def env_steps_per_update(benchmark: Benchmark, config: RL2Config) -> int:
    """Environment steps simulated per update (padding steps included)."""
    return config.num_trials * benchmark.steps_per_trial


def agent_from_state(state: RL2State, benchmark: Benchmark, config: RL2Config) -> Agent:
    return make_agent(state.params, benchmark.env, config)
