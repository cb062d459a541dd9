"""adaptrl: meta-RL and multi-task RL on JAX."""

from adaptrl.envs.registry import UnknownEnvError, list_envs, make
from adaptrl.rollout.trial import Agent, AgentInput, Trial, run_trial

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentInput",
    "Trial",
    "UnknownEnvError",
    "__version__",
    "list_envs",
    "make",
    "run_trial",
]
