"""resources/attach-rbac.yaml: attach mode's Kubernetes permissions read nodes, aws-node and kube-proxy's
ConfigMap by name, and write only aws-node, in the Role meant for allow_snat_changes."""

from __future__ import annotations

from pathlib import Path

import yaml

from peerprobe.backends.aws._read import KUBE_PROXY_CONFIG
from peerprobe.backends.aws.kube import AWS_NODE

RBAC = Path(__file__).resolve().parents[1] / "resources" / "attach-rbac.yaml"
READ_VERBS = {"get", "list", "watch"}


def documents() -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(RBAC.read_text(encoding="utf-8")) if doc]


def rules(kind: str) -> dict[str, list[dict[str, object]]]:
    return {doc["metadata"]["name"]: doc["rules"] for doc in documents() if doc["kind"] == kind}  # type: ignore[index]


def test_only_the_snat_role_writes_and_only_to_aws_node() -> None:
    for name, found in (rules("Role") | rules("ClusterRole")).items():
        for rule in found:
            writes = set(rule["verbs"]) - READ_VERBS  # type: ignore[arg-type]
            if writes:
                assert name == "peerprobe-attach-snat"
                assert rule["resourceNames"] == [AWS_NODE[1]] and writes == {"patch"}


def test_kube_system_is_read_by_name_only() -> None:
    [role] = [d for d in documents() if d["kind"] == "Role" and d["metadata"]["name"] == "peerprobe-attach-read"]  # type: ignore[index]
    named = {name for rule in role["rules"] for name in rule["resourceNames"]}  # type: ignore[index]
    assert named == {AWS_NODE[1], KUBE_PROXY_CONFIG[1]}


def test_every_role_is_bound() -> None:
    roles = {(d["kind"], d["metadata"]["name"]) for d in documents() if d["kind"] in ("Role", "ClusterRole")}  # type: ignore[index]
    bound = {(d["roleRef"]["kind"], d["roleRef"]["name"]) for d in documents() if str(d["kind"]).endswith("Binding")}  # type: ignore[index]
    assert roles == bound
