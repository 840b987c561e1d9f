"""Which keys of a config differ from the defaults, and which workshop claims still speak for it."""

from __future__ import annotations

from peerprobe import config
from peerprobe.report import scope
from peerprobe.report.document import Report
from tests.report.conftest import cell_at


def test_the_defaults_differ_in_nothing() -> None:
    assert scope.non_default(config.load()) == {}


def test_non_default_keys_are_dotted_paths_with_their_values() -> None:
    local = config.from_mapping({"name": "x", "services": {"internal_nlb": {"target_type": "ip"}}})
    assert scope.describe(local) == ["services.internal_nlb.target_type: ip"]


def test_changed_phases_are_described_by_name() -> None:
    changed = config.from_mapping({"phases": [{"name": "one"}, {"name": "two"}]})
    assert scope.describe(changed) == ["phases: one, two"]


def test_a_key_that_only_names_things_keeps_every_claim(predicted: Report) -> None:
    renamed = scope.non_default(config.from_mapping({"name": "other", "region": "us-east-1"}))
    assert all(scope.claim_applies(cell, renamed) for cell in predicted.phases[0].cells)


def test_external_traffic_policy_drops_the_claims_on_node_ports_and_load_balancers(predicted: Report) -> None:
    local = scope.non_default(config.from_mapping({"services": {"external_traffic_policy": "Local"}}))
    assert not scope.claim_applies(cell_at(predicted, ("vpc2-ec2", "load-balancer")), local)
    assert scope.claim_applies(cell_at(predicted, ("vpc2-pod", "pod-ip")), local)


def test_a_key_not_known_to_be_neutral_drops_every_claim(predicted: Report) -> None:
    assert not scope.claim_applies(cell_at(predicted, ("vpc2-pod", "pod-ip")), {"clusters.vpc2.pod_eni": "secondary"})


def test_without_a_config_every_claim_the_model_attached_is_kept(predicted: Report) -> None:
    assert scope.workshop_errors(predicted, None) == predicted.workshop_errors()
