"""The images EKS nodes pull: current EKS AMIs run containerd 2.x, which no longer pulls Docker schema-1 images
(2.0 disables it, 2.1 removes it); registry.k8s.io/echoserver:1.4 is one, 1.10 is not and prints the same
fields (client_address, host, request_uri) on the same port."""

from __future__ import annotations

from peerprobe import config as config_module
from peerprobe import resources, topology

# Tags of k8s.gcr.io / registry.k8s.io echoserver published only as Docker schema-1 manifests.
SCHEMA_1 = {"registry.k8s.io/echoserver:1.4", "k8s.gcr.io/echoserver:1.4"}


def test_the_default_echo_image_is_one_containerd_2_pulls() -> None:
    config = config_module.load()
    assert config.images.echo == "registry.k8s.io/echoserver:1.10"
    assert config.images.echo not in SCHEMA_1


def test_the_echo_deployment_runs_the_configured_image() -> None:
    config = config_module.load()
    [echo] = [
        d
        for d in resources.manifests(config, topology.plan(config))
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "source-ip-app"
    ]
    assert [c["image"] for c in echo["spec"]["template"]["spec"]["containers"]] == ["registry.k8s.io/echoserver:1.10"]
