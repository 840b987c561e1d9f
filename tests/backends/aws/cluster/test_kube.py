"""The kubernetes side against a fake API server: server-side apply with field manager "peerprobe", the
bearer token on every request, aws-node's env patched like `kubectl set env`, the DaemonSet rollout wait,
readiness, the live configuration, and deletion of the LoadBalancer Services. Exec here is a client-level fake
(which pod and container); test_exec_websocket.py runs the real kubernetes.stream path over a websocket."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config as config_module
from peerprobe import resources, topology
from peerprobe.backends.aws._token import TokenSource
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.kube import KubeCluster, api_client, configuration, translate_status
from peerprobe.backends.ports import EksCluster
from peerprobe.errors import ConfigError, CredentialsError, NotFoundError, TransientError, WaitTimeoutError
from tests.backends.aws.cluster.fake_api import FakeApiServer, aws_node


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeApiServer]:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path))
    with FakeApiServer() as server:
        server.state.objects[("kube-system", "daemonsets", "aws-node")] = aws_node(
            {"ENABLE_PREFIX_DELEGATION": "false"}
        )
        server.state.nodes = [
            {
                "metadata": {"name": f"ip-172-16-{n}-20", "labels": {"topology.kubernetes.io/zone": "cn-northwest-1a"}},
                "status": {"addresses": [{"type": "InternalIP", "address": f"172.16.{n}.20"}]},
            }
            for n in (160, 96, 128)
        ]
        yield server


def connect(server: FakeApiServer, **kwargs: Any) -> KubeCluster:
    cluster = EksCluster(
        name="c1",
        arn="arn:aws-cn:eks:cn-northwest-1:123456789012:cluster/c1",
        status="ACTIVE",
        endpoint=server.url,
        version="1.31",
        service_cidr="10.100.0.0/16",
        subnet_ids=(),
        cluster_security_group_id="",
        certificate_authority=base64.b64encode(b"CA").decode(),
    )
    tokens = TokenSource(ClientFactory("cn-northwest-1").client("sts"), "c1")
    return KubeCluster(api_client(configuration(cluster, tokens)), name="c1", poll_seconds=0, **kwargs)


def test_server_side_apply_with_our_field_manager_and_the_eks_token(api: FakeApiServer) -> None:
    config = config_module.load()
    docs = resources.manifests(config, topology.plan(config))
    kube = connect(api, resolver=lambda host: ["10.0.0.1"])
    kube.apply(docs)
    patches = [r for r in api.state.requests if r.method == "PATCH"]
    assert len(patches) == len(docs)
    assert all(r.content_type == "application/apply-patch+yaml" for r in patches)
    assert all("fieldManager=peerprobe" in r.query and "force=true" in r.query for r in patches)
    assert all(r.authorization.startswith("Bearer k8s-aws-v1.") for r in api.state.requests)
    kube.wait_ready(timeout_seconds=5)
    hostnames = sorted(s.hostname for s in kube.services() if s.type == "LoadBalancer")
    assert hostnames == [
        f"{n}.elb.cn-northwest-1.amazonaws.com.cn"
        for n in ("loadbalancer", "service-nginx", "source-ip-app-internal-nlb")
    ]


def test_load_balancers_must_resolve_before_ready(api: FakeApiServer) -> None:
    config = config_module.load()
    kube = connect(api, resolver=lambda host: [])
    kube.apply([d for d in resources.manifests(config, topology.plan(config)) if d["kind"] == "Service"])
    with pytest.raises(WaitTimeoutError, match="load balancers not ready"):
        kube.wait_ready(timeout_seconds=0.2)


def test_patch_aws_node_env_like_kubectl_set_env_and_wait_for_the_rollout(api: FakeApiServer) -> None:
    api.state.lag_reads = 2  # the read-back after the patch, then one rollout poll, see the old generation
    kube = connect(api)
    env = kube.patch_aws_node_env(["AWS_VPC_K8S_CNI_EXTERNALSNAT=true", "ENABLE_PREFIX_DELEGATION-"])
    assert env == {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}
    patch = [r for r in api.state.requests if r.method == "PATCH"][-1]
    assert patch.content_type == "application/strategic-merge-patch+json"
    reads_before = len(api.state.requests)
    kube.wait_rollout(timeout_seconds=5)
    assert len(api.state.requests) - reads_before >= 2  # the first read still showed the old generation
    assert kube.cni_version() == "1.20.4"


def test_rollout_that_never_finishes_times_out(api: FakeApiServer) -> None:
    api.state.lag_reads = 10**6
    kube = connect(api)
    kube.patch_aws_node_env(["AWS_VPC_K8S_CNI_EXTERNALSNAT=true"])
    with pytest.raises(WaitTimeoutError, match="aws-node rollout"):
        kube.wait_rollout(timeout_seconds=0.2)


def test_bad_assignment_is_refused_before_any_request(api: FakeApiServer) -> None:
    kube = connect(api)
    with pytest.raises(ConfigError):
        kube.patch_aws_node_env(["=oops"])
    assert not [r for r in api.state.requests if r.method == "PATCH"]


def test_nodes_pods_services_and_deleting_load_balancer_services(api: FakeApiServer) -> None:
    config = config_module.load()
    kube = connect(api)
    kube.apply(resources.manifests(config, topology.plan(config)))
    assert [n.ip for n in kube.nodes()] == ["172.16.96.20", "172.16.128.20", "172.16.160.20"]
    busybox = kube.pod("busybox")
    assert busybox is not None and busybox.ip == "172.16.96.30"
    assert kube.cni_version() == "1.20.4"
    services = {s.name: s for s in kube.services()}
    assert services["loadbalancer"].type == "LoadBalancer" and services["loadbalancer"].target_port == 8080
    assert services["source-ip-app-headless"].cluster_ip is None
    assert sorted(kube.delete_load_balancer_services()) == [
        "loadbalancer",
        "service-nginx",
        "source-ip-app-internal-nlb",
    ]
    assert [s.name for s in kube.services() if s.type == "LoadBalancer"] == []


def test_one_exec_per_batch_in_the_busybox_pod(api: FakeApiServer) -> None:
    calls: list[dict[str, Any]] = []

    def fake_exec(core: Any, **kwargs: Any) -> str:
        calls.append(kwargs)
        return "output"

    config = config_module.load()
    kube = connect(api, exec_runner=fake_exec)
    kube.apply(resources.manifests(config, topology.plan(config)))
    assert kube.exec_in("busybox", "echo hi", timeout_seconds=5) == "output"
    assert calls == [
        {"pod": "busybox-abc", "namespace": "default", "container": "busybox", "script": "echo hi", "timeout": 5}
    ]
    with pytest.raises(NotFoundError):
        kube.exec_in("nothing", "echo", timeout_seconds=1)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, CredentialsError), (404, NotFoundError), (422, ConfigError), (429, TransientError), (503, TransientError)],
)
def test_status_translation(status: int, expected: type[Exception]) -> None:
    assert isinstance(translate_status(status, "x" * 500, kind="service", name="s"), expected)
    assert len(str(translate_status(status, "x" * 500, kind="service", name="s"))) < 320


def test_missing_daemonset_is_not_found(api: FakeApiServer) -> None:
    del api.state.objects[("kube-system", "daemonsets", "aws-node")]
    with pytest.raises(NotFoundError):
        connect(api).aws_node_env()


def test_load_balancers_must_also_have_settled_targets_when_asked(api: FakeApiServer) -> None:
    """Names resolve minutes before NLB targets leave `initial` (or Classic instances `OutOfService`): with a
    readiness hook (AwsCloud.target_health(...).settled on AWS) the wait also waits for that."""
    config = config_module.load()
    asked: list[str] = []

    def settled(hostname: str) -> bool:
        asked.append(hostname)
        return len(asked) > 3  # not settled for the first three answers (targets still registering)

    kube = connect(api, resolver=lambda host: ["10.0.0.1"], load_balancer_ready=settled)
    kube.apply([d for d in resources.manifests(config, topology.plan(config)) if d["kind"] == "Service"])
    kube.wait_ready(timeout_seconds=5)
    assert len(asked) > 3


def test_load_balancers_whose_targets_never_settle_time_out(api: FakeApiServer) -> None:
    config = config_module.load()
    kube = connect(api, resolver=lambda host: ["10.0.0.1"], load_balancer_ready=lambda hostname: False)
    kube.apply([d for d in resources.manifests(config, topology.plan(config)) if d["kind"] == "Service"])
    with pytest.raises(WaitTimeoutError, match="load balancers not ready"):
        kube.wait_ready(timeout_seconds=0.2)
