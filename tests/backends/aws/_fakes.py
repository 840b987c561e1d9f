"""Client-level fakes for the aws backend's tests: a recorder of every AWS operation (botocore's before-call
event, session-wide) and a fake of the kubernetes side for the experiment's cloud tests. The kubernetes
client itself is tested against a fake API server in cluster/."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.ports import ServiceInfo
from peerprobe.topology import Node, Pod


def on_every_session(monkeypatch: Any, hook: Callable[[Any], None]) -> None:
    """Call `hook` with every botocore session ClientFactory builds from now on (to register event handlers):
    every client any factory makes then goes through them."""
    original = ClientFactory._new_session

    def hooked(factory: ClientFactory) -> Any:
        session = original(factory)
        hook(session)
        return session

    monkeypatch.setattr(ClientFactory, "_new_session", hooked)


class Recorder:
    """`service:Operation` of every call any client of the wrapped factories makes, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model: Any, **kwargs: Any) -> None:
        self.calls.append(f"{model.service_model.signing_name}:{model.name}")

    def install(self, monkeypatch: Any) -> None:
        on_every_session(monkeypatch, lambda session: session.events.register("before-call", self))

    def mutations(self) -> list[str]:
        reads = ("Describe", "Get", "List")
        return [c for c in self.calls if not c.split(":", 1)[1].startswith(reads)]


def service(
    name: str,
    *,
    type_: str = "ClusterIP",
    node_port: int | None = None,
    hostname: str = "",
    cluster_ip: str = "10.100.128.161",
) -> ServiceInfo:
    return ServiceInfo(
        name=name, type=type_, port=80, target_port=8080, node_port=node_port, cluster_ip=cluster_ip,
        external_traffic_policy="Cluster", hostname=hostname,
    )  # fmt: skip


@dataclass
class FakeKube:
    """What AwsExperiment asks of a cluster, in memory; records applies, patches and execs."""

    name: str
    nodes_: list[Node]
    env: dict[str, str] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    execs: list[tuple[str, str]] = field(default_factory=list)
    exec_output: Callable[[str], str] = lambda script: ""
    services_: list[ServiceInfo] = field(default_factory=list)
    on_delete_services: Callable[[], None] = lambda: None
    rollouts: int = 0

    def nodes(self) -> list[Node]:
        return self.nodes_

    def pod(self, app: str) -> Pod | None:
        return Pod(ip=f"{self.nodes_[0].ip[:-1]}9", node=self.nodes_[0].name) if self.applied else None

    def apply(self, manifests: Sequence[dict[str, Any]]) -> None:
        self.applied += manifests

    def wait_deployments(self, *, timeout_seconds: float) -> None:
        pass

    def wait_ready(self, *, timeout_seconds: float) -> None:
        pass

    def services(self) -> list[ServiceInfo]:
        return self.services_

    def aws_node_env(self) -> dict[str, str]:
        return dict(self.env)

    def cni_version(self) -> str:
        return "1.20.4"

    def patch_aws_node_env(self, assignments: Sequence[str]) -> dict[str, str]:
        from peerprobe import aws_node

        self.env = aws_node.apply_assignments(self.env, list(assignments))
        return dict(self.env)

    def wait_rollout(self, *, timeout_seconds: float) -> None:
        self.rollouts += 1

    def exec_in(self, app: str, script: str, *, timeout_seconds: float) -> str:
        self.execs.append((app, script))
        return self.exec_output(script)

    def delete_load_balancer_services(self) -> list[str]:
        self.on_delete_services()
        deleted = [s.name for s in self.services_ if s.type == "LoadBalancer"]
        self.services_ = [s for s in self.services_ if s.type != "LoadBalancer"]
        return deleted
