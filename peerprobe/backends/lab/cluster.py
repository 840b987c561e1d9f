"""The lab's Cluster port: manifests applied to the namespace network, aws-node's environment patched through
the same path as `peerprobe lab set-env`. The aws backend implements the same port with the kubernetes client.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import structlog

from peerprobe.backends.lab import environment, health
from peerprobe.backends.lab.agent.process import is_agent
from peerprobe.config import ExperimentConfig
from peerprobe.errors import WaitTimeoutError

log = structlog.get_logger()
POLL_SECONDS = 0.1


class LabCluster:
    """One of the lab environment's two clusters (vpc1 runs the apps and Services, vpc2 a busybox)."""

    def __init__(self, config: ExperimentConfig, key: environment.VpcKey) -> None:
        self.config = config
        self.key = key

    def apply(self, manifests: Sequence[Mapping[str, object]]) -> None:
        environment.apply_manifests(self.config, self.key, manifests)

    def aws_node_env(self) -> dict[str, str]:
        return dict(environment.require_state(self.config).aws_node[self.key])

    def patch_aws_node_env(self, assignments: Sequence[str]) -> dict[str, str]:
        environment.set_env(self.config, self.key, assignments)
        return self.aws_node_env()

    def wait_ready(self, *, timeout_seconds: float) -> None:
        """Bounded: the agent serves, and (vpc1) every load balancer has a healthy target in some zone."""
        deadline = time.monotonic() + timeout_seconds
        while not self._ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(f"lab cluster {self.key} not ready within {timeout_seconds:g}s",
                                       resource="cluster", resource_id=self.key, state="not ready")  # fmt: skip
            time.sleep(min(POLL_SECONDS, remaining))
        log.info("lab.cluster.ready", cluster=self.key, env=environment.env_key(self.config))

    def _ready(self) -> bool:
        state = environment.require_state(self.config)
        if state.agent_pid is None or not is_agent(state.agent_pid) or state.net is None:
            return False
        if self.key != "vpc1":
            return True
        healthy = health.check_all(state.net.load_balancers)
        kinds = {lb.kind for lb in state.net.load_balancers}
        return all(any(healthy[lb.ns] for lb in state.net.load_balancers if lb.kind == k) for k in kinds)
