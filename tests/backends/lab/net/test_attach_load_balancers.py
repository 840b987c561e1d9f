"""Load balancer nodes attached to a running lab leave the kernel in the state a lab built with them at once has."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from labnet_helpers import unavailable

from peerprobe import config as cfg
from peerprobe import resources
from peerprobe import topology as topo
from peerprobe.backends.lab import kube, net
from peerprobe.backends.lab.net import LabNet
from peerprobe.errors import InfrastructureError

pytestmark = pytest.mark.lab


def kernel_state(lab: LabNet) -> dict[str, str]:
    """Per namespace (named without the environment's prefix): IPv4 addresses, routes and rules, sorted (the
    lab's rules of one priority match disjoint input interfaces, so their order carries no meaning; IPv6
    link-local addresses are random), and the iptables rules in their order."""
    state = {}
    for ns in lab.namespaces():
        ip = [
            ["ip", "-4", "-n", ns, "-o", "addr"],
            ["ip", "-4", "-n", ns, "route", "show", "table", "all"],
            ["ip", "-4", "-n", ns, "rule"],
        ]
        lines = sorted(line for command in ip for line in _run(command).splitlines())
        rules = re.sub(
            r"\[\d+:\d+\]", "", re.sub(r"^#.*\n", "", _run(["ip", "netns", "exec", ns, "iptables-save"]), flags=re.M)
        )
        state[ns.removeprefix(lab.prefix)] = ("\n".join(lines) + rules).replace(lab.prefix, "P")
    return state


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def build(config: cfg.ExperimentConfig, services: list[net.KubeService] | None) -> LabNet:
    return net.build(f"lab:attach-{uuid.uuid4().hex[:6]}:{config.region}", config, topo.plan(config), services=services)


@pytest.mark.parametrize("overrides", [{}, {"services": {"internal_nlb": {"target_type": "ip"}}}])
def test_attached_load_balancers_match_a_lab_built_with_them(overrides: dict[str, object]) -> None:
    if reason := unavailable():
        pytest.skip(reason)
    config = cfg.from_mapping(overrides)
    planned = topo.plan(config)
    services = kube.services(resources.manifests(config, planned), planned)
    whole, piecewise = build(config, services), build(config, None)
    try:
        attached = net.attach_load_balancers(piecewise, config, planned, services)
        assert attached.load_balancers and len(attached.namespaces()) == len(whole.namespaces())
        assert kernel_state(attached) == kernel_state(whole)
    finally:
        net.teardown(whole.env_key)
        net.teardown(piecewise.env_key)


def test_attaching_to_a_lab_that_has_them_is_refused() -> None:
    if reason := unavailable():
        pytest.skip(reason)
    config = cfg.load()
    planned = topo.plan(config)
    services = kube.services(resources.manifests(config, planned), planned)
    lab = build(config, services)
    try:
        fewer = [s for s in services if s.kind != "internal-nlb"]
        with pytest.raises(InfrastructureError, match="rebuild instead"):
            net.attach_load_balancers(lab, config, planned, fewer)
    finally:
        net.teardown(lab.env_key)
