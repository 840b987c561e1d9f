"""Attach mode and aws-node: a phase without snat leaves it as found; a phase with snat saves what was found
first, and restore puts exactly that back (other variables untouched), read back, also in a later run."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerprobe.backends import attach
from peerprobe.config import Snat
from peerprobe.errors import ConflictError, UnreadableStateError
from peerprobe.topology import Node
from tests.backends.aws._fakes import FakeKube

CLUSTER = attach.cluster_id("aws", "cn-northwest-1", "theirs")
FOUND = {"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "10.0.0.0/8", "WARM_IP_TARGET": "5"}


@pytest.fixture(autouse=True)
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))


def kube() -> FakeKube:
    return FakeKube(name="theirs", nodes_=[Node(name="n", ip="172.16.1.16")], env=dict(FOUND))


def test_a_phase_without_snat_only_reads() -> None:
    cluster = kube()
    snat = attach.set_snat(cluster, CLUSTER, None)
    assert snat == Snat(exclude_snat_cidrs=["10.0.0.0/8"])
    assert cluster.env == FOUND
    assert attach.found_env(CLUSTER) is None


def test_restore_puts_back_exactly_what_was_found() -> None:
    cluster = kube()
    attach.set_snat(cluster, CLUSTER, Snat(external_snat=True))
    assert cluster.env != FOUND
    attach.restore(cluster, CLUSTER)
    assert cluster.env == FOUND


def test_what_the_first_phase_set_is_never_saved_as_found() -> None:
    cluster = kube()
    attach.set_snat(cluster, CLUSTER, Snat(external_snat=True))
    attach.set_snat(cluster, CLUSTER, Snat())
    assert attach.found_env(CLUSTER) == FOUND


def test_a_later_run_restores_what_a_crash_left_changed() -> None:
    attach.set_snat(kube_left := kube(), CLUSTER, Snat(external_snat=True))
    later = FakeKube(name="theirs", nodes_=kube_left.nodes_, env=dict(kube_left.env))  # a new process's client
    assert attach.restore(later, CLUSTER) != []
    assert later.env == FOUND
    assert attach.found_env(CLUSTER) is None


def test_restore_with_nothing_saved_changes_nothing() -> None:
    cluster = kube()
    cluster.env["AWS_VPC_K8S_CNI_EXTERNALSNAT"] = "true"  # the owner's own change, not peerprobe's
    assert attach.restore(cluster, CLUSTER) == []
    assert cluster.env["AWS_VPC_K8S_CNI_EXTERNALSNAT"] == "true"


def test_a_restore_the_read_back_denies_keeps_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = kube()
    attach.set_snat(cluster, CLUSTER, Snat(external_snat=True))
    monkeypatch.setattr(cluster, "patch_aws_node_env", lambda assignments: dict(cluster.env))  # a webhook undoes it
    with pytest.raises(ConflictError, match="still differs from what was found"):
        attach.restore(cluster, CLUSTER)
    assert attach.found_env(CLUSTER) == FOUND


def test_an_unreadable_record_is_said_not_skipped(tmp_path: Path) -> None:
    attach.set_snat(kube(), CLUSTER, Snat(external_snat=True))
    saved = next((tmp_path / "state" / "attach").iterdir())
    saved.write_text('{"env": [1]}', encoding="utf-8")
    with pytest.raises(UnreadableStateError):
        attach.restore(kube(), CLUSTER)
