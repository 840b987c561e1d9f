"""Attach mode's namespace on a cluster through the kubernetes client, against the fake API server: applied as
peerprobe's, the apps and Services applied and read there only, and deleted with all it holds, leaving the
cluster's other namespaces alone; the namespaces peerprobe never owns are never deleted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peerprobe import config as config_module
from peerprobe import resources, topology
from peerprobe.errors import ConfigError
from tests.backends.aws.cluster.fake_api import FakeApiServer
from tests.backends.aws.cluster.test_kube import api, connect

__all__ = ["api"]
OURS = "peerprobe-visitor"


@pytest.fixture
def theirs(api: FakeApiServer) -> Iterator[FakeApiServer]:
    """Someone else's Service in `default`, which peerprobe must never see or touch."""
    api.state.objects[("default", "services", "payments")] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "payments", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
    }
    yield api


def test_the_namespace_is_applied_as_peerprobes(theirs: FakeApiServer, tmp_path: Path) -> None:
    connect(theirs, namespace=OURS).ensure_namespace()
    found = theirs.state.objects[("", "namespaces", OURS)]
    assert found["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "peerprobe"}


def test_apps_and_services_go_to_the_namespace_and_only_theirs_are_read(theirs: FakeApiServer) -> None:
    kube = connect(theirs, namespace=OURS)
    config = config_module.load()
    kube.ensure_namespace()
    kube.apply(resources.manifests(config, topology.plan(config), cluster="vpc1"))
    written = {(r.method, r.path.split("/namespaces/")[-1].split("/")[0]) for r in theirs.state.requests}
    assert {ns for method, ns in written if method == "PATCH"} == {OURS}
    assert "payments" not in {service.name for service in kube.services()}


def test_deleting_the_namespace_takes_what_is_in_it_and_nothing_else(theirs: FakeApiServer) -> None:
    kube = connect(theirs, namespace=OURS)
    config = config_module.load()
    kube.ensure_namespace()
    kube.apply(resources.manifests(config, topology.plan(config), cluster="vpc1"))
    kube.delete_namespace(timeout_seconds=5)
    assert [key for key in theirs.state.objects if key[0] == OURS or key[2] == OURS] == []
    assert ("default", "services", "payments") in theirs.state.objects
    kube.delete_namespace(timeout_seconds=5)  # already gone: the goal is met


@pytest.mark.parametrize("namespace", ["default", "kube-system"])
def test_a_namespace_peerprobe_never_owns_is_never_deleted(theirs: FakeApiServer, namespace: str) -> None:
    with pytest.raises(ConfigError, match="never deletes"):
        connect(theirs, namespace=namespace).delete_namespace(timeout_seconds=1)
    assert ("default", "services", "payments") in theirs.state.objects


def test_each_applied_body_names_the_namespace_of_its_path(theirs: FakeApiServer) -> None:
    kube = connect(theirs, namespace=OURS)
    config = config_module.load()
    kube.apply(resources.manifests(config, topology.plan(config), cluster="vpc1"))
    stored = [obj for (ns, _, _), obj in theirs.state.objects.items() if ns == OURS and "metadata" in obj]
    assert stored and all(obj["metadata"]["namespace"] == OURS for obj in stored)
