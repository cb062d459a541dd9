"""MAML for RL: initial parameters that adapt with a few policy-gradient steps (Finn et al. 2017).

For a task ``T_i`` the inner loop samples ``N`` episodes with the policy ``pi_theta``, fits a
baseline, and takes a vanilla policy-gradient (REINFORCE) step::

    phi_i = theta - alpha * grad_theta L_i(theta),     L_i = -mean_t log pi_theta(a_t|s_t) A_t

The outer loop samples ``N`` fresh episodes with ``pi_phi_i`` and improves ``theta`` on their
return, differentiating *through* the inner step (second-order by default; ``first_order`` treats
``grad L_i`` as a constant, FOMAML). The outer optimiser is TRPO (as in the paper: conjugate
gradient on Fisher-vector products, a KL trust region between the old and new *post-update*
policies, backtracking line search) or PPO (clipped post-update ratio, Adam; as in ProMP).

Everything of one meta-iteration is a single pure function (``make_update``): the meta-batch of
tasks is ``vmap``-ed (pre-update rollouts, baseline fits, inner steps, post-update rollouts), then
the outer step runs with ``lax`` loops (CG, line search, PPO epochs), so ``jit`` compiles it once.
Inside the outer step the per-task work (re-adapting ``theta``, second-order products) runs as a
``lax.map`` over tasks, one at a time by default (``outer_task_batch``): on a CPU that keeps a
task's activations in cache (2.6x faster than one vmapped batch for the inner Hessian-vector
product in a micro-benchmark).

Estimators of the inner loss (``objective``), which all have the same *gradient* and differ in
the *Hessian* they feed into the meta-gradient:

- ``maml``: ``log pi * A`` (the paper). Its Hessian drops the score-function terms.
- ``promp``: ProMP's low-variance curvature surrogate ``pi / pi_old * A`` (Rothfuss et al. 2019)
  plus a KL penalty keeping the pre-update policies near the old ones (adaptive coefficient).
- ``dice``: the loaded DiCE objective ``sum_t (box(w_t) - box(w_{t-1})) A_t`` with
  ``w_t = sum_{t' <= t} log pi(a_t')`` and the magic box ``box(x) = exp(x - stop_gradient(x))``
  (Foerster et al. 2018; Farquhar et al. 2019): unbiased Hessian, including cross-time terms.

Meta-test (``evaluate_adaptation``): the paper's protocol. On each held-out task, sample
``eval_trajectories`` episodes, take a gradient step, repeat; record the mean return after
0, 1, ..., ``eval_steps`` steps. ``agent_from_state`` gives the same learner as an ``Agent`` for
the trial protocol (``run_trial`` / ``meta_test``): it takes a gradient step every
``adapt_every`` finished episodes.

Shapes: M = num_tasks, K = num_inner_steps, N = trajectories_per_task, T = max_episode_steps.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from adaptrl.envs.base import Discrete, Environment
from adaptrl.nets.core import MLP
from adaptrl.rollout.trial import Agent, AgentInput, Transition, tree_where
from adaptrl.tasks.benchmark import Benchmark

PyTree = Any
MIN_LOG_STD = math.log(1e-6)


@dataclasses.dataclass(frozen=True)
class MAMLConfig:
    """MAML hyper-parameters; defaults are the public PyTorch reimplementation's 2D navigation.

    Attributes:
      hidden_sizes: hidden layers of the policy MLP.
      activation: nonlinearity after each hidden layer (a flax.linen name: tanh, relu, ...).
      init_log_std: initial log standard deviation of Gaussian (Box) actions. The log-std is a
        state-independent parameter, adapted in the inner loop like the others.
      normalize_actions: for bounded Box actions let the Gaussian live in [-1, 1] units, mapped
        affinely onto [low, high] before the environment (which clips), like rllab's
        normalize(env) in the original MAML code. Default False: raw units, as the PyTorch
        reimplementation (on point-nav the mapped policy learns a 10x smaller std and its
        fixed-size inner step then occasionally overshoots; see docs/results/maml.md).
      num_tasks: tasks per meta-batch.
      trajectories_per_task: episodes sampled per task for each inner step and for the
        post-update batch ("fast batch size").
      num_inner_steps: inner gradient steps during meta-training (fresh episodes for each).
      inner_lr: inner step size alpha.
      first_order: first-order MAML: the inner gradient is a constant for the meta-gradient.
      objective: inner-loss estimator. "maml": log-prob x advantage (the paper); "promp": ProMP's
        low-variance-curvature surrogate plus an adaptive KL penalty on the pre-update policies;
        "dice": loaded DiCE (magic box), whose Hessian is unbiased.
      baseline: "linear": the paper's linear feature baseline, fitted in closed form per task
        and batch; "mlp": a learned value MLP shared by all tasks, regressed on every batch's
        returns; "none": advantages are the returns.
      baseline_reg: ridge coefficient of the linear baseline, relative to the mean diagonal of
        X^T X (keeps the float32 solve well conditioned).
      value_sizes: hidden layers of the "mlp" baseline.
      value_lr: Adam step size of the "mlp" baseline.
      value_epochs: full-batch Adam steps of the "mlp" baseline per meta-iteration.
      gamma: discount.
      gae_lambda: GAE lambda (1.0: advantage = discounted return - baseline).
      normalize_advantages: standardise advantages per task and batch (as the reimplementation).
      loss_averaging: how the inner loss and the outer surrogate average over a task's steps.
        "steps": one mean over all valid steps of the task's episodes (the original MAML code,
        rllab's VPG/TRPO). "episodes": mean over each episode's valid steps, then over episodes
        (the PyTorch reimplementation). With early termination (point-nav ends within 0.01 of
        the goal) "episodes" gives an episode that ends after 1 step 100x the per-step weight of
        a full one: for goals near the start such chance hits dominate the inner gradient and
        the adapted policy overshoots at meta-test (docs/results/maml.md). Meta-*training* with
        "steps" was measured worse on point-nav (see docs/results/maml.md), so "episodes" stays
        the default. TRPO's KL constraint is a mean over all valid steps in both modes.
      outer: outer optimiser, "trpo" (the paper) or "ppo" (ProMP-style).
      max_kl: TRPO trust region: mean KL between old and new post-update policies.
      cg_iters: conjugate-gradient iterations.
      cg_damping: damping added to the Fisher-vector products.
      ls_max_steps: backtracking line-search steps (the step is rejected after that many).
      ls_backtrack_ratio: step shrink factor per line-search step.
      outer_lr: PPO outer Adam step size.
      ppo_epochs: PPO outer gradient steps per meta-iteration (full meta-batch each).
      clip_eps: PPO ratio clip.
      max_grad_norm: PPO global gradient-norm clip.
      promp_kl_coef: initial coefficient of ProMP's pre-update KL penalty.
      promp_kl_target: ProMP's target pre-update KL; the coefficient is halved/doubled when the
        measured KL is below/above target / 1.5 / target * 1.5.
      outer_task_batch: tasks vmapped together in the outer step's per-task work (gradient,
        Fisher-vector products, line search). 1: one task after the other, fastest on CPU (a
        task's activations stay in cache); num_tasks: one batch over all tasks (accelerators).
      eval_steps: meta-test gradient steps (returns after 0..eval_steps steps are reported).
      eval_trajectories: episodes sampled per meta-test step (the paper: "up to 4 gradient
        updates, each with 40 samples").
      eval_loss_averaging: averaging of the meta-test gradient steps' loss; "train": the same
        as ``loss_averaging``. Meta-testing with "steps" removes the overshoot of near-start
        goals described under ``loss_averaging`` without changing how the initialisation was
        meta-trained (docs/results/maml.md measures every combination).
      eval_samples: 0 (default): every meta-test step samples ``eval_trajectories`` episodes.
        > 0: a budget of env steps per meta-test step, as rllab's samplers (the paper's test
        script: ``batch_size=4000``): whole episodes are taken in order until they hold at least
        ``eval_samples`` steps, so once episodes end early (point-nav stops within 0.01 of the
        goal) a step uses more episodes. At most ``eval_episode_cap`` episodes are sampled.
      eval_episode_cap: buffer size under ``eval_samples`` (episodes rolled out per step; those
        past the budget are masked out). The per-step stat ``capped`` says if it was too small.
      eval_parallel_envs: environments the budgeted sampler steps in lockstep (``within_budget``).
        1: episodes one after another. 40 (= 4000 / H): rllab's VectorizedSampler, which the
        paper's test script used; it keeps only episodes completed when the budget is reached,
        so short (successful) episodes weigh more, in the gradient and in the reported return.
      later_inner_lr: step size of meta-test steps beyond num_inner_steps (the paper evaluates
        with 0.1 for the first step and 0.05 after).
      eval_protocol: "steps": the paper's protocol (returns after k steps, the "episode" axis of
        the results is k); "trial": the shared trial protocol (meta_test with the adapting agent).
      adapt_every: the trial agent takes a gradient step after every adapt_every episodes.
    """

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = 0.0
    normalize_actions: bool = False
    num_tasks: int = 20
    trajectories_per_task: int = 20
    num_inner_steps: int = 1
    inner_lr: float = 0.1
    first_order: bool = False
    objective: Literal["maml", "promp", "dice"] = "maml"
    baseline: Literal["linear", "mlp", "none"] = "linear"
    baseline_reg: float = 1e-5
    value_sizes: tuple[int, ...] = (64, 64)
    value_lr: float = 1e-3
    value_epochs: int = 20
    gamma: float = 0.99
    gae_lambda: float = 1.0
    normalize_advantages: bool = True
    loss_averaging: Literal["steps", "episodes"] = "episodes"
    outer: Literal["trpo", "ppo"] = "trpo"
    max_kl: float = 1e-2
    cg_iters: int = 10
    cg_damping: float = 1e-5
    ls_max_steps: int = 15
    ls_backtrack_ratio: float = 0.8
    outer_lr: float = 1e-3
    ppo_epochs: int = 5
    clip_eps: float = 0.3
    max_grad_norm: float = 1.0
    promp_kl_coef: float = 5e-4
    promp_kl_target: float = 1e-2
    outer_task_batch: int = 1
    eval_steps: int = 3
    eval_trajectories: int = 40
    eval_loss_averaging: Literal["train", "steps", "episodes"] = "train"
    eval_samples: int = 0
    eval_episode_cap: int = 400
    eval_parallel_envs: int = 1
    later_inner_lr: float = 0.05
    eval_protocol: Literal["steps", "trial"] = "steps"
    adapt_every: int = 1

    def validate(self) -> None:
        choices = {
            "objective": ("maml", "promp", "dice"),
            "baseline": ("linear", "mlp", "none"),
            "outer": ("trpo", "ppo"),
            "eval_protocol": ("steps", "trial"),
            "loss_averaging": ("steps", "episodes"),
            "eval_loss_averaging": ("train", "steps", "episodes"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not hasattr(nn, self.activation):
            raise ValueError(f"unknown activation {self.activation!r} (a flax.linen function)")
        for name in ("num_tasks", "trajectories_per_task", "num_inner_steps", "cg_iters",
                     "ls_max_steps", "ppo_epochs", "value_epochs", "eval_trajectories",
                     "adapt_every", "outer_task_batch", "eval_episode_cap",
                     "eval_parallel_envs"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_steps < 0:
            raise ValueError(f"eval_steps must be >= 0, got {self.eval_steps}")
        if self.eval_samples < 0:
            raise ValueError(f"eval_samples must be >= 0 (0 = a fixed number of episodes), "
                             f"got {self.eval_samples}")  # fmt: skip
        if self.eval_samples > 0 and self.eval_episode_cap % self.eval_parallel_envs:
            raise ValueError(f"eval_episode_cap ({self.eval_episode_cap}) must be a multiple of "
                             f"eval_parallel_envs ({self.eval_parallel_envs})")  # fmt: skip
        if self.eval_samples > 0 and self.eval_protocol == "trial":
            raise ValueError("eval_samples applies to eval_protocol='steps' only; the trial "
                             "protocol adapts every adapt_every episodes")  # fmt: skip
        for name in ("max_kl", "outer_lr", "value_lr", "clip_eps", "max_grad_norm",
                     "promp_kl_target"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("cg_damping", "baseline_reg", "promp_kl_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.ls_backtrack_ratio < 1.0:
            raise ValueError(
                f"ls_backtrack_ratio must lie in (0, 1), got {self.ls_backtrack_ratio}"
            )
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError("gamma and gae_lambda must lie in [0, 1]")


# ----------------------------------------------------------------------------------------------
# Policy: MLP -> Gaussian (state-independent log-std) or categorical. Its output is a dict of
# arrays with the batch shape of the observations ("the distribution"), so log-probs, KLs and
# Fisher-vector products are written once for both kinds.


class PolicyNet(nn.Module):
    """``obs (..., D) -> {"logits"}`` (Discrete) or ``{"mean", "log_std"}`` (Box)."""

    hidden_sizes: tuple[int, ...]
    activation: str
    action_dim: int
    discrete: bool
    init_log_std: float

    @nn.compact
    def __call__(self, obs):
        h = MLP(tuple(self.hidden_sizes), activation=self.activation)(obs)
        head = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01))(h)
        if self.discrete:
            return {"logits": head}
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
        )
        log_std = jnp.maximum(log_std, MIN_LOG_STD)
        return {"mean": head, "log_std": jnp.broadcast_to(log_std, head.shape)}


def make_policy(env: Environment, config: MAMLConfig) -> PolicyNet:
    space = env.action_space
    discrete = isinstance(space, Discrete)
    return PolicyNet(
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        action_dim=space.n if discrete else int(np.prod(space.shape)),
        discrete=discrete,
        init_log_std=config.init_log_std,
    )


def log_prob(dist: dict, action: jax.Array) -> jax.Array:
    """Log-probability of ``action`` under ``dist``; batch shape of the distribution."""
    if "logits" in dist:
        logp_all = jax.nn.log_softmax(dist["logits"])
        return jnp.take_along_axis(logp_all, action[..., None].astype(jnp.int32), -1)[..., 0]
    mean, log_std = dist["mean"], dist["log_std"]
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def kl_divergence(p: dict, q: dict) -> jax.Array:
    """KL(p || q) per batch element."""
    if "logits" in p:
        lp, lq = jax.nn.log_softmax(p["logits"]), jax.nn.log_softmax(q["logits"])
        return jnp.sum(jnp.exp(lp) * (lp - lq), axis=-1)
    var_ratio = jnp.exp(2 * (p["log_std"] - q["log_std"]))
    mean_term = ((p["mean"] - q["mean"]) * jnp.exp(-q["log_std"])) ** 2
    return jnp.sum(0.5 * (var_ratio + mean_term - 1.0) - (p["log_std"] - q["log_std"]), axis=-1)


def sample_action(dist: dict, key: jax.Array) -> jax.Array:
    if "logits" in dist:
        return jax.random.categorical(key, dist["logits"]).astype(jnp.int32)
    noise = jax.random.normal(key, dist["mean"].shape, dist["mean"].dtype)
    return dist["mean"] + jnp.exp(dist["log_std"]) * noise


def _flat_obs(obs: jax.Array) -> jax.Array:
    return jnp.asarray(obs, jnp.float32).reshape(-1)


def action_map(env: Environment, config: MAMLConfig) -> tuple[float, float] | None:
    """``(center, half_range)`` mapping policy actions in [-1, 1] onto a bounded Box, or None
    (discrete actions, unbounded boxes, or ``normalize_actions=False``)."""
    space = env.action_space
    if not config.normalize_actions or isinstance(space, Discrete):
        return None
    low, high = float(space.low), float(space.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return (high + low) / 2, (high - low) / 2


def _to_env(amap, action):
    return action if amap is None else amap[0] + amap[1] * action


def _from_env(amap, action):
    return action if amap is None else (action - amap[0]) / amap[1]


# ----------------------------------------------------------------------------------------------
# Episodes and advantages (one task; vmap over tasks at the call site).


@struct.dataclass
class Episodes:
    """N episodes of one task, padded to the horizon T (steps after the end are invalid).

    Attributes:
      observations: (N, T, D) float32, observation at which each action was taken.
      actions: (N, T) int32 or (N, T, A) float32 (before the environment's clipping).
      rewards: (N, T) float32, 0 on padding.
      valid: (N, T) bool.
      success: (N, T) bool.
      log_probs: (N, T) float32, log-probability of the action under the sampling policy.
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    valid: jax.Array
    success: jax.Array
    log_probs: jax.Array


@struct.dataclass
class TaskBatch:
    """Episodes plus their advantages (N, T) (0 on padding); constants for every gradient."""

    episodes: Episodes
    advantages: jax.Array


def rollout_episode(env: Environment, net: PolicyNet, params, task, key, amap=None) -> Episodes:
    """One episode of ``pi_params`` in ``task`` (leaves with leading axis T; vmap over keys).

    ``amap``: ``action_map(env, config)``; recorded actions stay in the policy's units."""
    k_reset, k_steps = jax.random.split(key)
    state, ts = env.reset(k_reset, task)

    def body(carry, k):
        state, obs, alive = carry
        k_act, k_env = jax.random.split(k)
        x = _flat_obs(obs)
        dist = net.apply(params, x)
        action = sample_action(dist, k_act)
        logp = log_prob(dist, action)
        new_state, ts = env.step(k_env, state, _to_env(amap, action), task)
        record = (x, action, jnp.where(alive, ts.reward, 0.0), alive, ts.success & alive, logp)
        carry = (
            tree_where(alive, new_state, state),
            jnp.where(alive, ts.observation, obs),
            alive & ~ts.done,
        )
        return carry, record

    keys = jax.random.split(k_steps, env.max_episode_steps)
    _, (x, a, r, valid, success, logp) = jax.lax.scan(
        body, (state, ts.observation, jnp.bool_(True)), keys
    )
    return Episodes(x, a, r, valid, success, logp)


def rollout_episodes(env, net, params, task, key, num_episodes: int, amap=None) -> Episodes:
    """``num_episodes`` independent episodes (leading axes (N, T))."""
    keys = jax.random.split(key, num_episodes)
    return jax.vmap(lambda k: rollout_episode(env, net, params, task, k, amap))(keys)


def discounted_returns(rewards: jax.Array, valid: jax.Array, gamma: float) -> jax.Array:
    """(..., T) reward-to-go ``sum_k gamma^k r_{t+k}`` within each episode, 0 on padding."""

    def body(g, x):
        r, ok = x
        g = jnp.where(ok, r + gamma * g, 0.0)
        return g, g

    xs = (jnp.moveaxis(rewards, -1, 0), jnp.moveaxis(valid, -1, 0))
    _, g = jax.lax.scan(body, jnp.zeros(rewards.shape[:-1], rewards.dtype), xs, reverse=True)
    return jnp.moveaxis(g, 0, -1)


def baseline_features(observations: jax.Array, valid: jax.Array) -> jax.Array:
    """rllab's linear-baseline features ``[o, o^2, t/100, (t/100)^2, (t/100)^3, 1]``.

    Args: observations (N, T, D); valid (N, T). Returns (N, T, 2D + 4), zero on padding.
    """
    o = jnp.clip(observations, -10.0, 10.0)
    t = jnp.broadcast_to(jnp.arange(o.shape[-2], dtype=jnp.float32)[:, None] / 100.0,
                         o.shape[:-1] + (1,))  # fmt: skip
    f = jnp.concatenate([o, o**2, t, t**2, t**3, jnp.ones_like(t)], axis=-1)
    return f * valid[..., None]


def fit_linear_baseline(features: jax.Array, returns: jax.Array, reg: float) -> jax.Array:
    """Ridge regression of ``returns`` on ``features`` (any leading shape); returns weights (F,).

    Solves ``(X^T X + lambda I) w = X^T y`` with ``lambda = reg * mean(diag(X^T X))``; padded
    rows are all-zero features with zero target, so they do not count.
    """
    x = features.reshape(-1, features.shape[-1])
    y = returns.reshape(-1)
    xtx = x.T @ x
    lam = reg * jnp.mean(jnp.diag(xtx)) + 1e-8
    return jnp.linalg.solve(xtx + lam * jnp.eye(x.shape[1], dtype=x.dtype), x.T @ y)


def gae_advantages(rewards, values, valid, gamma: float, lam: float) -> jax.Array:
    """(..., T) GAE within each episode; the value after the episode's last step is 0."""
    v = values * valid
    next_v = jnp.concatenate([v[..., 1:], jnp.zeros_like(v[..., :1])], axis=-1)
    deltas = rewards + gamma * next_v - v

    def body(a, x):
        d, ok = x
        a = jnp.where(ok, d + gamma * lam * a, 0.0)
        return a, a

    xs = (jnp.moveaxis(deltas, -1, 0), jnp.moveaxis(valid, -1, 0))
    _, adv = jax.lax.scan(body, jnp.zeros(deltas.shape[:-1], deltas.dtype), xs, reverse=True)
    return jnp.moveaxis(adv, 0, -1)


def normalize(x: jax.Array, valid: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Standardise ``x`` over its valid entries; 0 on padding."""
    m = valid.astype(x.dtype)
    n = jnp.maximum(m.sum(), 1.0)
    mean = (x * m).sum() / n
    std = jnp.sqrt((((x - mean) * m) ** 2).sum() / n)
    return (x - mean) / (std + eps) * m


class ValueNet(nn.Module):
    """The learned ("mlp") baseline: features -> scalar value."""

    hidden_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, features):
        h = MLP(tuple(self.hidden_sizes), activation="tanh")(features)
        return nn.Dense(1)(h)[..., 0]


def make_task_batch(episodes: Episodes, config: MAMLConfig, value_fn=None) -> TaskBatch:
    """Fit/apply the baseline and compute (normalised) advantages of one task's episodes."""
    ep = episodes
    valid = ep.valid
    returns = discounted_returns(ep.rewards, valid, config.gamma)
    feats = baseline_features(ep.observations, valid)
    if config.baseline == "linear":
        w = fit_linear_baseline(feats, returns, config.baseline_reg)
        values = feats @ w
    elif config.baseline == "mlp":
        values = value_fn(feats)
    else:
        values = jnp.zeros_like(returns)
    adv = gae_advantages(ep.rewards, jax.lax.stop_gradient(values), valid, config.gamma,
                         config.gae_lambda)  # fmt: skip
    if config.normalize_advantages:
        adv = normalize(adv, valid)
    return TaskBatch(episodes=ep, advantages=jax.lax.stop_gradient(adv))


# ----------------------------------------------------------------------------------------------
# Inner loss, adaptation, outer surrogate.


def _traj_mean(x: jax.Array, valid: jax.Array, averaging: str = "episodes") -> jax.Array:
    """One task's (N, T) per-step terms -> scalar: mean over all valid steps ("steps"), or over
    each episode's valid steps and then over episodes ("episodes", the reimplementation's)."""
    m = valid.astype(x.dtype)
    if averaging == "steps":
        return (x * m).sum() / jnp.maximum(m.sum(), 1.0)
    if averaging == "episodes":
        per_episode = (x * m).sum(-1) / jnp.maximum(m.sum(-1), 1.0)
        used = (m.sum(-1) > 0).astype(x.dtype)  # empty rows (a sample budget's unused slots)
        return (per_episode * used).sum() / jnp.maximum(used.sum(), 1.0)
    raise ValueError(f"averaging must be 'steps' or 'episodes', got {averaging!r}")


def magic_box(x: jax.Array) -> jax.Array:
    """DiCE's magic box: value 1, derivative ``box(x) * dx`` to every order."""
    return jnp.exp(x - jax.lax.stop_gradient(x))


def inner_loss(net: PolicyNet, params, batch: TaskBatch, objective: str = "maml",
               averaging: str = "episodes") -> jax.Array:  # fmt: skip
    """Inner-loop loss of one task (to *minimise*); same gradient for every ``objective``."""
    ep = batch.episodes
    logp = log_prob(net.apply(params, ep.observations), ep.actions)
    adv = batch.advantages
    if objective == "maml":
        terms = logp * adv
    elif objective == "promp":  # low-variance curvature: likelihood ratio to the sampler
        terms = jnp.exp(logp - ep.log_probs) * adv
    elif objective == "dice":  # loaded DiCE with the advantage as the per-step "cost"
        logp = logp * ep.valid
        w = jnp.cumsum(logp, axis=-1)
        terms = (magic_box(w) - magic_box(w - logp)) * adv
    else:
        raise ValueError(f"unknown objective {objective!r}")
    return -_traj_mean(terms, ep.valid, averaging)


def inner_step(net, params, batch: TaskBatch, lr, objective: str, first_order: bool,
               averaging: str = "episodes"):  # fmt: skip
    """``params - lr * grad inner_loss``; first-order: the gradient is a constant."""
    g = jax.grad(lambda p: inner_loss(net, p, batch, objective, averaging))(params)
    if first_order:
        g = jax.lax.stop_gradient(g)
    return jax.tree_util.tree_map(lambda p, gi: p - lr * gi, params, g)


def adapt(net, params, pre: TaskBatch, config: MAMLConfig, first_order: bool | None = None):
    """Apply the K inner steps on the stored pre-update batches (leading axis K).

    Returns the list ``[theta, phi_1, ..., phi_K]`` (differentiable in ``theta``).
    """
    fo = config.first_order if first_order is None else first_order
    chain = [params]
    for k in range(config.num_inner_steps):
        batch_k = jax.tree_util.tree_map(lambda x, k=k: x[k], pre)
        chain.append(inner_step(net, chain[-1], batch_k, config.inner_lr, config.objective, fo,
                                config.loss_averaging))  # fmt: skip
    return chain


@struct.dataclass
class MetaBatch:
    """Everything collected in one meta-iteration, leading axis M (tasks).

    ``pre``: leaves (M, K, N, T, ...), the batches of the K inner steps; ``post``: (M, N, T, ...).
    """

    pre: TaskBatch
    post: TaskBatch


def task_outputs(net, params, pre: TaskBatch, post: TaskBatch, config: MAMLConfig,
                 with_pre: bool = False) -> dict:  # fmt: skip
    """One task: distribution of the adapted policy ``phi(theta)`` on the post-update observations
    (``"post"``) and, ``with_pre``, of ``phi_k(theta)`` on the k-th pre-update batch (``"pre"``)."""
    chain = adapt(net, params, pre, config)
    out = {"post": net.apply(chain[-1], post.episodes.observations)}
    if with_pre:
        out["pre"] = [net.apply(chain[k], pre.episodes.observations[k])
                      for k in range(config.num_inner_steps)]  # fmt: skip
    return out


def policy_outputs(net, params, data: MetaBatch, config: MAMLConfig, with_pre: bool = False):
    """``task_outputs`` of every task of the meta-batch (leading axis M)."""
    # By default tasks one after the other rather than vmapped: one task's activations
    # (N*T x hidden) then stay in cache through the inner step and its derivatives (on CPU).
    return jax.lax.map(
        lambda b: task_outputs(net, params, b[0], b[1], config, with_pre),
        (data.pre, data.post),
        batch_size=_task_batch(config),
    )


def _task_batch(config: MAMLConfig) -> int | None:
    return None if config.outer_task_batch <= 1 else config.outer_task_batch


def surrogate_from_outputs(out, data: MetaBatch, config: MAMLConfig, clip: float | None = None):
    """Post-update surrogate loss (mean over tasks, to minimise) from the adapted policies'
    outputs; ``clip`` gives PPO's clipped objective."""
    post = data.post
    ratio = jnp.exp(log_prob(out["post"], post.episodes.actions) - post.episodes.log_probs)
    adv = post.advantages
    if clip is None:
        terms = ratio * adv
    else:
        terms = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv)
    per_task = jax.vmap(lambda x, v: _traj_mean(x, v, config.loss_averaging))
    return -jnp.mean(per_task(terms, post.episodes.valid))


def mean_kl(old: dict, new: dict, valid: jax.Array) -> jax.Array:
    """KL(old || new) averaged over valid steps of each task, then over tasks."""
    kl = kl_divergence(old, new)
    m = valid.astype(kl.dtype)
    axes = tuple(range(1, kl.ndim))
    return jnp.mean((kl * m).sum(axes) / jnp.maximum(m.sum(axes), 1.0))


def pre_update_kl(old_pre: list, new_pre: list, data: MetaBatch) -> jax.Array:
    """ProMP's penalty: mean over inner steps of KL between old and new pre-update policies."""
    kls = [mean_kl(o, n, data.pre.episodes.valid[:, k])
           for k, (o, n) in enumerate(zip(old_pre, new_pre, strict=True))]  # fmt: skip
    return sum(kls) / len(kls)


def kl_hessian_vector_product(
    task_fn: Callable,
    flat0: jax.Array,
    batches: PyTree,
    old: dict,
    valid: jax.Array,
    damping: float = 0.0,
    task_batch: int | None = None,
    linearize_once: bool = True,
) -> Callable:
    """TRPO's Fisher-vector product through the inner step.

    ``task_fn(x, batch_i)`` is task i's adapted-policy distribution on its post-update
    observations as a function of the flat meta-parameters ``x`` (second order through the inner
    step unless first-order MAML). Returns ``fvp(v) = H v + damping v`` where ``H`` is the
    Hessian at ``flat0`` of ``x -> mean_i mean_valid KL(old_i || task_fn(x, batch_i))``.

    Per task ``H_i = J_i^T H_out,i J_i`` exactly (``J_i`` the Jacobian of the outputs, ``H_out,i``
    the KL's Hessian w.r.t. the outputs), because the KL's gradient w.r.t. the outputs vanishes
    at ``old = task_fn(flat0)``. Each product is a forward-mode pass, an elementwise output-space
    product and its transpose, done one task at a time (or ``task_batch`` tasks vmapped) so that
    the task's activations stay in cache. ``linearize_once`` (default) linearizes all tasks
    once and reuses the stored residuals (the inner step's activations) in every product, which
    skips the primal passes in each CG iteration at the cost of memory; ``False`` re-linearizes
    inside each product. Timed per meta-iteration on a 2-core CPU, the two showed no consistent
    difference (docs/results/maml.md, 2026-12-05).
    """
    num_tasks = valid.shape[0]

    def task_kl(old_i, out_i, valid_i):
        kl = kl_divergence(old_i, out_i)
        m = valid_i.astype(kl.dtype)
        return (kl * m).sum() / jnp.maximum(m.sum(), 1.0) / num_tasks

    if linearize_once:
        # Linearize all tasks once: the CG iterations then reuse the stored residuals (the inner
        # step's activations) and each product is only a tangent pass and its transpose.
        def all_outputs(x):
            return jax.lax.map(lambda b: task_fn(x, b), batches, batch_size=task_batch)

        out, jvp_all = jax.linearize(all_outputs, flat0)
        vjp_all = jax.linear_transpose(jvp_all, flat0)
        kl_grad = jax.grad(lambda o: jnp.sum(jax.vmap(task_kl)(old, o, valid)))

        def fvp_once(v):
            h_u = jax.jvp(kl_grad, (out,), (jvp_all(v),))[1]
            return vjp_all(h_u)[0] + damping * v

        return fvp_once

    def fvp(v):
        def one(xs):
            batch_i, old_i, valid_i = xs
            out_i, jvp_i = jax.linearize(lambda x: task_fn(x, batch_i), flat0)
            kl_grad = jax.grad(lambda o: task_kl(old_i, o, valid_i))
            h_u = jax.jvp(kl_grad, (out_i,), (jvp_i(v),))[1]
            return jax.linear_transpose(jvp_i, flat0)(h_u)[0]

        per_task = jax.lax.map(one, (batches, old, valid), batch_size=task_batch)
        return per_task.sum(0) + damping * v

    return fvp


def conjugate_gradient(matvec: Callable, b: jax.Array, iters: int, tol: float = 1e-10):
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` (fixed iterations;
    once the residual is below ``tol`` the iterate is frozen). Returns ``(x, r)`` with the
    residual ``r = b - A x`` (so ``A x = b - r`` comes for free)."""

    def body(_, carry):
        x, r, p, rr = carry
        ap = matvec(p)
        alpha = rr / jnp.maximum(jnp.dot(p, ap), 1e-20)
        x_new, r_new = x + alpha * p, r - alpha * ap
        rr_new = jnp.dot(r_new, r_new)
        p_new = r_new + (rr_new / jnp.maximum(rr, 1e-30)) * p
        active = rr > tol
        return tuple(jnp.where(active, a, b_) for a, b_ in
                     zip((x_new, r_new, p_new, rr_new), carry, strict=True))  # fmt: skip

    init = (jnp.zeros_like(b), b, b, jnp.dot(b, b))
    x, r, _, _ = jax.lax.fori_loop(0, iters, body, init)
    return x, r


# ----------------------------------------------------------------------------------------------
# State, init, update.


@struct.dataclass
class MAMLState:
    """Meta-parameters and everything else that changes between meta-iterations.

    ``opt_state`` is the outer Adam state (PPO; empty for TRPO); ``value_params`` and
    ``value_opt_state`` belong to the "mlp" baseline (empty otherwise); ``kl_coef`` is ProMP's
    adaptive penalty coefficient.
    """

    params: PyTree
    opt_state: PyTree
    value_params: PyTree
    value_opt_state: PyTree
    kl_coef: jax.Array
    key: jax.Array
    iteration: jax.Array


def _outer_optimizer(config: MAMLConfig):
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                       optax.adam(config.outer_lr, eps=1e-5))  # fmt: skip


def _value_net(config: MAMLConfig) -> ValueNet:
    return ValueNet(tuple(config.value_sizes))


def _feature_dim(env: Environment) -> int:
    return 2 * int(np.prod(env.observation_space.shape)) + 4


def init(key: jax.Array, benchmark: Benchmark, config: MAMLConfig, num_iterations: int):
    """Fresh meta-parameters (and optimiser / value-baseline state)."""
    del num_iterations  # no schedules
    config.validate()
    env = benchmark.env
    net = make_policy(env, config)
    k_params, k_value, k_state = jax.random.split(key, 3)
    _, ts = env.reset(k_params, benchmark.sample_train_task(k_params))
    params = net.init(k_params, _flat_obs(ts.observation))
    opt_state = _outer_optimizer(config).init(params) if config.outer == "ppo" else ()
    value_params, value_opt_state = (), ()
    if config.baseline == "mlp":
        value_params = _value_net(config).init(k_value, jnp.zeros((_feature_dim(env),)))
        value_opt_state = optax.adam(config.value_lr).init(value_params)
    return MAMLState(
        params=params,
        opt_state=opt_state,
        value_params=value_params,
        value_opt_state=value_opt_state,
        kl_coef=jnp.float32(config.promp_kl_coef),
        key=k_state,
        iteration=jnp.int32(0),
    )


def _value_fn(config: MAMLConfig, value_params):
    if config.baseline != "mlp":
        return None
    vnet = _value_net(config)
    return lambda feats: vnet.apply(value_params, feats)


def collect_task(env, net, config: MAMLConfig, params, value_params, task, key):
    """Pre-update batches of the K inner steps and the post-update batch of one task.

    The inner steps here only choose the sampling policies (no meta-gradient flows here).
    """
    value_fn = _value_fn(config, value_params)
    amap = action_map(env, config)
    keys = jax.random.split(key, config.num_inner_steps + 1)
    phi, pre = params, []
    for k in range(config.num_inner_steps):
        ep = rollout_episodes(env, net, phi, task, keys[k], config.trajectories_per_task, amap)
        batch = make_task_batch(ep, config, value_fn)
        pre.append(batch)
        phi = inner_step(net, phi, batch, config.inner_lr, "maml", True, config.loss_averaging)
    ep = rollout_episodes(env, net, phi, task, keys[-1], config.trajectories_per_task, amap)
    post = make_task_batch(ep, config, value_fn)
    pre = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *pre)
    return pre, post


def make_update(benchmark: Benchmark, config: MAMLConfig, num_iterations: int):
    """Return a jittable ``update(state) -> (state, metrics)`` (one meta-iteration)."""
    del num_iterations
    config.validate()
    env = benchmark.env
    net = make_policy(env, config)
    promp = config.objective == "promp"

    def collect(state: MAMLState, key) -> MetaBatch:
        k_tasks, k_roll = jax.random.split(key)
        tasks = jax.vmap(benchmark.sample_train_task)(jax.random.split(k_tasks, config.num_tasks))
        pre, post = jax.vmap(
            lambda t, k: collect_task(env, net, config, state.params, state.value_params, t, k)
        )(tasks, jax.random.split(k_roll, config.num_tasks))
        return MetaBatch(pre=pre, post=post)

    def outputs(params, data):
        return policy_outputs(net, params, data, config, with_pre=promp)

    def objective(out, old, data, kl_coef, clip=None):
        loss = surrogate_from_outputs(out, data, config, clip)
        if promp:
            loss = loss + kl_coef * pre_update_kl(old["pre"], out["pre"], data)
        return loss

    def trpo(state: MAMLState, data: MetaBatch):
        flat0, unravel = ravel_pytree(state.params)
        valid = data.post.episodes.valid
        old = jax.lax.stop_gradient(outputs(state.params, data))

        def loss_fn(x):
            return objective(outputs(unravel(x), data), old, data, state.kl_coef)

        def kl_out(out):
            return mean_kl(old["post"], out["post"], valid)

        loss0, g = jax.value_and_grad(loss_fn)(flat0)
        fvp = kl_hessian_vector_product(
            lambda x, b: task_outputs(net, unravel(x), b[0], b[1], config)["post"],
            flat0, (data.pre, data.post), old["post"], valid, config.cg_damping,
            _task_batch(config),
        )  # fmt: skip
        direction, residual = conjugate_gradient(fvp, g, config.cg_iters)
        # s^T F s with F s = g - residual (the CG recurrence), saving one more product.
        shs = 0.5 * jnp.dot(direction, g - residual)
        full_step = direction / jnp.sqrt(jnp.maximum(shs, 1e-20) / config.max_kl)

        def evaluate(x):
            out = outputs(unravel(x), data)
            return objective(out, old, data, state.kl_coef), kl_out(out)

        def ls_cond(c):
            k, accepted = c[0], c[1]
            return (~accepted) & (k < config.ls_max_steps)

        def ls_body(c):
            k = c[0]
            loss, kl = evaluate(flat0 - config.ls_backtrack_ratio**k * full_step)
            ok = (loss < loss0) & (kl < config.max_kl) & jnp.isfinite(loss) & jnp.isfinite(kl)
            return k + 1, ok, loss, kl

        k, accepted, loss, kl = jax.lax.while_loop(
            ls_cond, ls_body, (jnp.int32(0), jnp.bool_(False), loss0, jnp.float32(0.0))
        )
        size = jnp.where(accepted, config.ls_backtrack_ratio ** (k - 1).astype(jnp.float32), 0.0)
        new_flat = flat0 - size * full_step
        info = {
            "surrogate_before": loss0,
            "surrogate_after": jnp.where(accepted, loss, loss0),
            "kl": jnp.where(accepted, kl, 0.0),
            "line_search_steps": k.astype(jnp.float32),
            "step_accepted": accepted.astype(jnp.float32),
            "grad_norm": jnp.linalg.norm(g),
        }
        return unravel(new_flat), state.opt_state, info

    def ppo(state: MAMLState, data: MetaBatch):
        optimizer = _outer_optimizer(config)
        old = jax.lax.stop_gradient(outputs(state.params, data))

        def loss_fn(params):
            out = outputs(params, data)
            loss = objective(out, old, data, state.kl_coef, clip=config.clip_eps)
            return loss, out

        def epoch(carry, _):
            params, opt_state = carry
            (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            info = {"surrogate": loss, "kl": mean_kl(old["post"], out["post"],
                                                     data.post.episodes.valid),
                    "grad_norm": optax.tree.norm(grads)}  # fmt: skip
            return (optax.apply_updates(params, updates), opt_state), info

        (params, opt_state), infos = jax.lax.scan(
            epoch, (state.params, state.opt_state), None, length=config.ppo_epochs
        )
        info = {
            "surrogate_before": infos["surrogate"][0],
            "surrogate_after": infos["surrogate"][-1],
            "kl": infos["kl"][-1],
            "grad_norm": infos["grad_norm"][0],
        }
        return params, opt_state, info

    def fit_value(state: MAMLState, data: MetaBatch):
        if config.baseline != "mlp":
            return state.value_params, state.value_opt_state, {}
        vnet = _value_net(config)
        opt = optax.adam(config.value_lr)
        eps = [data.pre.episodes, data.post.episodes]
        feats = jnp.concatenate(
            [baseline_features(e.observations, e.valid).reshape(-1, _feature_dim(env))
             for e in eps])  # fmt: skip
        rets = jnp.concatenate([discounted_returns(e.rewards, e.valid, config.gamma).reshape(-1)
                                for e in eps])  # fmt: skip
        mask = jnp.concatenate([e.valid.reshape(-1) for e in eps]).astype(jnp.float32)

        def loss_fn(vp):
            err = (vnet.apply(vp, feats) - rets) ** 2
            return (err * mask).sum() / jnp.maximum(mask.sum(), 1.0)

        def step(carry, _):
            vp, os_ = carry
            loss, g = jax.value_and_grad(loss_fn)(vp)
            upd, os_ = opt.update(g, os_, vp)
            return (optax.apply_updates(vp, upd), os_), loss

        (vp, os_), losses = jax.lax.scan(
            step, (state.value_params, state.value_opt_state), None, length=config.value_epochs
        )
        return vp, os_, {"value_loss": losses[-1]}

    def update(state: MAMLState):
        key, k_collect = jax.random.split(state.key)
        data = collect(state, k_collect)
        if config.outer == "trpo":
            params, opt_state, info = trpo(state, data)
        else:
            params, opt_state, info = ppo(state, data)
        value_params, value_opt_state, vinfo = fit_value(state, data)
        kl_coef = state.kl_coef
        if promp:
            old_pre = jax.lax.stop_gradient(outputs(state.params, data)["pre"])
            new_pre = outputs(params, data)["pre"]
            pre_kl = pre_update_kl(old_pre, new_pre, data)
            target = config.promp_kl_target
            kl_coef = jnp.where(pre_kl < target / 1.5, kl_coef / 2,
                                jnp.where(pre_kl > target * 1.5, kl_coef * 2, kl_coef))  # fmt: skip
            info = {**info, "pre_update_kl": pre_kl, "kl_coef": kl_coef}
        pre_ret = data.pre.episodes.rewards[:, 0].sum(-1).mean()
        post_ret = data.post.episodes.rewards.sum(-1).mean()
        metrics = {"pre_update_return": pre_ret, "post_update_return": post_ret, **info, **vinfo}
        new_state = MAMLState(
            params=params,
            opt_state=opt_state,
            value_params=value_params,
            value_opt_state=value_opt_state,
            kl_coef=kl_coef,
            key=key,
            iteration=state.iteration + 1,
        )
        return new_state, metrics

    update.collect = collect  # exposed for tests and diagnostics
    update.outputs = outputs
    return update


def train(key: jax.Array, benchmark: Benchmark, config: MAMLConfig, num_iterations: int):
    """``num_iterations`` meta-iterations in one ``lax.scan``; returns (state, metrics) with a
    leading iteration axis on the metrics. Jit it at the call site."""
    state = init(key, benchmark, config, num_iterations)
    update = make_update(benchmark, config, num_iterations)
    return jax.lax.scan(lambda s, _: update(s), state, None, length=num_iterations)


def env_steps_per_update(benchmark: Benchmark, config: MAMLConfig) -> int:
    """Environment steps simulated per meta-iteration (padding steps included)."""
    per_task = config.trajectories_per_task * (config.num_inner_steps + 1)
    return config.num_tasks * per_task * benchmark.env.max_episode_steps


def _eval_averaging(config: MAMLConfig) -> str:
    """Loss averaging of meta-test gradient steps."""
    if config.eval_loss_averaging == "train":
        return config.loss_averaging
    return config.eval_loss_averaging


def _step_lr(config: MAMLConfig, k) -> jax.Array:
    """Step size of the k-th (0-based) adaptation step at meta-test."""
    return jnp.where(k < config.num_inner_steps, config.inner_lr, config.later_inner_lr)


# ----------------------------------------------------------------------------------------------
# Meta-test.


@struct.dataclass
class AdaptCarry:
    """The trial agent's memory: current (adapted) parameters and the episodes since the last
    gradient step."""

    params: PyTree
    buffer: Episodes  # leaves (adapt_every, T, ...)
    count: jax.Array  # () int32, episodes in the buffer
    steps: jax.Array  # () int32, gradient steps taken


def make_agent(params, value_params, env: Environment, config: MAMLConfig) -> Agent:
    """MAML as an ``Agent``: act with the current parameters; ``end_episode`` stores the finished
    episode and, every ``adapt_every`` episodes, takes one policy-gradient step on them (step size
    ``inner_lr`` for the first ``num_inner_steps`` steps, ``later_inner_lr`` after)."""
    net = make_policy(env, config)
    value_fn = _value_fn(config, value_params)
    amap = action_map(env, config)
    n, horizon = config.adapt_every, env.max_episode_steps
    obs_dim = int(np.prod(env.observation_space.shape))
    space = env.action_space
    a_shape = () if isinstance(space, Discrete) else tuple(space.shape)
    a_dtype = jnp.int32 if isinstance(space, Discrete) else jnp.float32

    def init(key, task):
        del key, task
        z = jnp.zeros((n, horizon), jnp.float32)
        buffer = Episodes(
            observations=jnp.zeros((n, horizon, obs_dim), jnp.float32),
            actions=jnp.zeros((n, horizon) + a_shape, a_dtype),
            rewards=z,
            valid=z.astype(bool),
            success=z.astype(bool),
            log_probs=z,
        )
        return AdaptCarry(params, buffer, jnp.int32(0), jnp.int32(0))

    def act(key, carry: AdaptCarry, inp: AgentInput):
        dist = net.apply(carry.params, _flat_obs(inp.observation))
        action = sample_action(dist, key)
        return carry, _to_env(amap, action), log_prob(dist, action)

    def end_episode(key, carry: AdaptCarry, episode: Transition):
        del key
        ep = Episodes(
            observations=jax.vmap(_flat_obs)(episode.agent_input.observation),
            actions=_from_env(amap, episode.action.astype(a_dtype)),
            rewards=episode.reward,
            valid=episode.valid,
            success=episode.success,
            log_probs=episode.extras,
        )
        buffer = jax.tree_util.tree_map(lambda b, e: b.at[carry.count].set(e), carry.buffer, ep)
        count = carry.count + 1
        full = count >= n
        batch = make_task_batch(buffer, config, value_fn)
        adapted = inner_step(net, carry.params, batch, _step_lr(config, carry.steps), "maml",
                             True, _eval_averaging(config))  # fmt: skip
        return AdaptCarry(
            params=tree_where(full, adapted, carry.params),
            buffer=buffer,
            count=jnp.where(full, 0, count),
            steps=carry.steps + full.astype(jnp.int32),
        )

    return Agent(init=init, act=act, end_episode=end_episode, name="maml")


def agent_from_state(state: MAMLState, benchmark: Benchmark, config: MAMLConfig) -> Agent:
    return make_agent(state.params, state.value_params, benchmark.env, config)


def within_budget(episodes: Episodes, budget: int, streams: int = 1):
    """Which of N sampled episodes a sampler with a budget of ``budget`` env steps keeps.

    The N episodes are split into ``streams`` environments stepped in lockstep, each running
    its episodes back to back (row ``i`` belongs to stream ``i // (N / streams)``). Sampling
    stops at the first time step by which the *completed* episodes hold at least ``budget``
    steps; every episode completed by then is kept, the ones still running are dropped. With
    ``streams = 1`` that is whole episodes in order, the last one crossing the budget (rllab's
    serial sampler); with ``streams = budget / horizon`` it is rllab's ``VectorizedSampler``
    (the MAML paper's test script: 40 envs for 4000 steps), which favours episodes that end
    early.

    Returns ``(keep, filled)``: (N,) bool, and whether the N episodes were enough to decide
    (False: the budget was not reached, or a stream ran out of episodes before the stop).
    """
    lengths = episodes.valid.sum(-1)  # (N,)
    n = lengths.shape[0]
    per_stream = lengths.reshape(streams, n // streams)
    ends = jnp.cumsum(per_stream, axis=1).reshape(n)  # time step at which each episode ends
    done_by = ((ends[None, :] <= ends[:, None]) * lengths[None, :]).sum(1)  # steps done by then
    reached = done_by >= budget
    stop = jnp.min(jnp.where(reached, ends, jnp.iinfo(ends.dtype).max))
    keep = ends <= stop
    filled = reached.any() & (per_stream.sum(1).min() >= stop)
    return keep, filled


def adaptation_returns(env, config: MAMLConfig, steps: int):
    """``(params, value_params, task, key) -> per-step stats`` for one task: sample
    ``eval_trajectories`` episodes (or, with ``eval_samples``, whole episodes up to that many
    env steps), step, repeat. Stats have a trailing axis ``steps + 1``: mean return, success
    (majority of episodes), mean length, earliest first-success step, episodes used, and
    whether the sample budget hit ``eval_episode_cap`` before it was filled."""
    net = make_policy(env, config)
    amap = action_map(env, config)
    budget = config.eval_samples
    n_roll = config.eval_episode_cap if budget > 0 else config.eval_trajectories

    def run(params, value_params, task, key):
        value_fn = _value_fn(config, value_params)
        keys = jax.random.split(key, steps + 1)
        phi, stats = params, []
        for k in range(steps + 1):
            ep = rollout_episodes(env, net, phi, task, keys[k], n_roll, amap)
            if budget > 0:
                keep, filled = within_budget(ep, budget, config.eval_parallel_envs)
                capped = ~filled
                ep = ep.replace(valid=ep.valid & keep[:, None],
                                rewards=ep.rewards * keep[:, None],
                                success=ep.success & keep[:, None])  # fmt: skip
            else:
                keep = jnp.ones(n_roll, bool)
                capped = jnp.bool_(False)
            w = keep.astype(jnp.float32)
            n_used = w.sum()
            succ = ep.success.any(-1)
            first = jnp.where(succ, jnp.argmax(ep.success, axis=-1) + 1, ep.valid.shape[-1] + 1)
            stats.append((
                (ep.rewards.sum(-1) * w).sum() / n_used,
                (succ * w).sum() / n_used >= 0.5,
                jnp.round((ep.valid.sum(-1) * w).sum() / n_used).astype(jnp.int32),
                jnp.where(succ.any(), first.min(), 0).astype(jnp.int32),
                n_used.astype(jnp.int32),
                capped,
            ))  # fmt: skip
            if k < steps:
                batch = make_task_batch(ep, config, value_fn)
                phi = inner_step(net, phi, batch, _step_lr(config, k), "maml", True,
                                 _eval_averaging(config))  # fmt: skip
        return tuple(jnp.stack(s) for s in zip(*stats, strict=True))

    return run


def evaluate_adaptation(
    benchmark: Benchmark,
    states: MAMLState | Sequence[MAMLState],
    config: MAMLConfig,
    *,
    seeds: Sequence[int] = (0,),
    num_episodes: int | None = None,
    exploration_episodes: int = 0,
    tasks: PyTree | None = None,
    steps: int | None = None,
):
    """Meta-test trained MAML states on the held-out tasks; returns a ``MetaTestResult``.

    ``eval_protocol="steps"`` (default): the paper's protocol. Arrays have shape
    (seeds, tasks, steps + 1) and entry ``[..., k]`` is the mean return of the episodes sampled
    after ``k`` gradient steps (``eval_trajectories`` of them, or ``eval_samples`` env steps;
    ``steps`` = ``config.eval_steps``, or ``num_episodes - 1`` when given).
    ``eval_protocol="trial"``: the shared trial protocol, ``meta_test`` with
    ``agent_from_state`` (one gradient step every ``adapt_every`` episodes).

    ``states``: one state for every seed, or one per seed (rows of the same state object form a
    replication group, as in ``meta_test``).
    """
    from adaptrl.eval.protocol import meta_test, result_from_seeds
    from adaptrl.tasks.distribution import tree_size

    seeds = list(seeds)
    if isinstance(states, MAMLState):
        states = [states] * len(seeds)
    states = list(states)
    if len(states) != len(seeds):
        raise ValueError(f"got {len(states)} states for {len(seeds)} seeds; pass one per seed")
    if config.eval_protocol == "trial":
        agents, made = [], {}
        for s in states:
            agents.append(made.setdefault(id(s), agent_from_state(s, benchmark, config)))
        return meta_test(benchmark, agents, seeds=seeds, num_episodes=num_episodes,
                         exploration_episodes=exploration_episodes, tasks=tasks)  # fmt: skip
    if steps is None:
        steps = config.eval_steps if num_episodes is None else num_episodes - 1
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if not 0 <= exploration_episodes <= steps:
        raise ValueError(
            f"exploration_episodes must be in [0, {steps}], got {exploration_episodes}"
        )
    tasks = benchmark.test_tasks if tasks is None else tasks
    n_tasks = tree_size(tasks)
    run = adaptation_returns(benchmark.env, config, steps)
    fn = jax.jit(jax.vmap(run, in_axes=(None, None, 0, 0)))
    start = time.perf_counter()
    per_seed = []
    for seed, s in zip(seeds, states, strict=True):
        keys = jax.random.split(jax.random.PRNGKey(seed), n_tasks)
        per_seed.append(jax.device_get(fn(s.params, s.value_params, tasks, keys)))
    if config.eval_samples > 0:
        used = np.stack([p[4] for p in per_seed])  # (seeds, tasks, steps + 1)
        capped = np.stack([p[5] for p in per_seed])
        print(f"maml meta-test, eval_samples={config.eval_samples}: episodes per step (mean "
              f"over seeds x tasks) {np.round(used.mean((0, 1)), 1).tolist()}; budget not "
              f"filled (eval_episode_cap={config.eval_episode_cap} too small) in "
              f"{int(capped.sum())} of {capped.size} steps", flush=True)  # fmt: skip
        if capped.any():
            warnings.warn(f"eval_samples={config.eval_samples} was not reached within "
                          f"eval_episode_cap={config.eval_episode_cap} episodes in "
                          f"{int(capped.sum())} steps; raise eval_episode_cap",
                          stacklevel=2)  # fmt: skip
    result = result_from_seeds(
        benchmark, per_seed, replicas=states, seeds=seeds, agent="maml", privileged=False,
        has_adaptation_step=True, exploration_episodes=exploration_episodes, start=start,
    )  # fmt: skip
    if config.eval_samples > 0:  # saved with the results (meta_test.json), not only printed
        result.episodes_used = used.astype(np.int64)
        result.budget_capped = capped.astype(bool)
    return result
