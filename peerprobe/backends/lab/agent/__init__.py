"""The lab's in-namespace agent: echo/nginx servers for every listener and the batched probe client."""

from peerprobe.backends.lab.agent.client import probe_batch, probe_batches, run_batch, run_batches
from peerprobe.backends.lab.agent.process import is_agent, start_agent, stop_agent
from peerprobe.backends.lab.agent.resolver import NameNotResolved, Resolver, ResolverSource, StaticResolver
from peerprobe.backends.lab.agent.spec import AgentSpec, Listener

__all__ = [
    "AgentSpec",
    "Listener",
    "NameNotResolved",
    "Resolver",
    "ResolverSource",
    "StaticResolver",
    "is_agent",
    "probe_batch",
    "probe_batches",
    "run_batch",
    "run_batches",
    "start_agent",
    "stop_agent",
]
