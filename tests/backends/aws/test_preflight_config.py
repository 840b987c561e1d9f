"""The aws backend's preflight refuses, before any AWS call, what cannot work: images nodes in an aws-cn region
cannot pull, and ip targets (the Load Balancer Controller is not installed); and probe.attempts retries cells."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from peerprobe import config as config_module
from peerprobe.backends.aws.experiment import preflight, registry_of
from peerprobe.backends.experiment import Experiment
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import ConfigError
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec, plan
from peerprobe.topology import plan as topology_plan
from tests.backends.aws._fakes import Recorder

MIRROR = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/mirror"


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("busybox", "docker.io"),
        ("library/nginx:1.27", "docker.io"),
        ("registry.k8s.io/echoserver:1.10", "registry.k8s.io"),
        (f"{MIRROR}/busybox", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"),
        ("localhost:5000/x", "localhost:5000"),
    ],
)
def test_the_registry_of_an_image_reference(image: str, registry: str) -> None:
    assert registry_of(image) == registry


def test_aws_cn_defaults_are_refused_naming_images_before_any_aws_call(recorder: Recorder) -> None:
    with pytest.raises(ConfigError, match=r"^images\.echo: registry\.k8s\.io/echoserver:1\.10 is pulled from "):
        preflight(config_module.load(), creating=True)
    assert recorder.calls == []


def test_each_image_not_mirrored_is_named() -> None:
    images = {"echo": f"{MIRROR}/echoserver:1.10", "busybox": f"{MIRROR}/busybox", "nginx": "nginx"}
    with pytest.raises(ConfigError, match=r"^images\.nginx: nginx is pulled from docker\.io"):
        preflight(config_module.from_mapping({"images": images}), creating=True)


def test_ip_targets_are_refused_on_aws(recorder: Recorder) -> None:
    cfg = config_module.from_mapping({"region": "eu-west-1", "services": {"internal_nlb": {"target_type": "ip"}}})
    with pytest.raises(ConfigError, match=r"^services\.internal_nlb\.target_type: ip needs the AWS Load Balancer"):
        preflight(cfg, creating=True)
    assert recorder.calls == []


class FlakyVantage:
    """Times out each probe the first `fails` times it is asked, then answers."""

    def __init__(self, fails: int) -> None:
        self.fails = fails
        self.asked: list[int] = []

    def probe(self, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]:
        self.asked.append(len(specs))
        outcome = "timeout" if len(self.asked) <= self.fails else "ok"
        return [ProbeResult(spec=spec, outcome=outcome) for spec in specs]


@pytest.mark.parametrize(
    ("attempts", "fails", "asked", "outcome"), [(1, 1, 1, "timeout"), (3, 1, 2, "ok"), (2, 5, 2, "timeout")]
)
def test_probe_attempts_retries_the_cells_that_failed(attempts: int, fails: int, asked: int, outcome: str) -> None:
    cfg = config_module.from_mapping({"probe": {"attempts": attempts}})
    specs = [s for s in plan(topology_plan(cfg)) if s.vantage == "vpc2-pod"][:3]
    vantage = FlakyVantage(fails)
    experiment = Experiment(
        EnvironmentRef(backend="lab", config=cfg, run_id="r"),
        cloud=None,  # type: ignore[arg-type]
        cluster=lambda vpc: None,
        vantage=lambda name: vantage,
    )  # type: ignore[arg-type,return-value]
    results = experiment.probe("vpc2-pod", specs, timeout_seconds=1)
    assert len(vantage.asked) == asked and {r.outcome for r in results} == {outcome}
