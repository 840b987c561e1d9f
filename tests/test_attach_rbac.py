"""resources/attach-rbac.yaml: attach mode's Kubernetes permissions read nodes, aws-node and kube-proxy's
ConfigMap by name; write aws-node only in the Role meant for allow_snat_changes, and otherwise only peerprobe's
own namespace (by name) and the workloads it runs. Every request of a whole attached run is granted:
tests/backends/aws/test_attach_run.py."""

from __future__ import annotations

import re
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


PLACEHOLDER = "peerprobe-platform-check"  # the namespace the manifest names; a user puts their own there
WRITERS = {"peerprobe-attach-snat", "peerprobe-attach-namespace", "peerprobe-attach-workloads"}


def test_only_the_snat_namespace_and_workload_roles_write() -> None:
    for name, found in (rules("Role") | rules("ClusterRole")).items():
        for rule in found:
            writes = set(rule["verbs"]) - READ_VERBS  # type: ignore[arg-type]
            if writes:
                assert name in WRITERS, name
            if name == "peerprobe-attach-snat":
                assert rule["resourceNames"] == [AWS_NODE[1]] and writes == {"patch"}


def test_outside_its_namespace_only_aws_node_is_written() -> None:
    strategic = "application/strategic-merge-patch+json"
    kube_system = "/apis/apps/v1/namespaces/kube-system/daemonsets"
    assert not allowed("PATCH", f"{kube_system}/kube-proxy", strategic, namespace=PLACEHOLDER)
    assert not allowed("DELETE", "/api/v1/namespaces/default", namespace=PLACEHOLDER)
    assert allowed("PATCH", f"{kube_system}/aws-node", strategic, namespace=PLACEHOLDER)


# --- what a request needs, as the API server's RBAC authorizer decides it ------------------------------------

_NAMESPACED = re.compile(r"^/(?:api/v1|apis/([^/]+)/[^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+)(?:/([^/]+))?)?$")
_CLUSTER = re.compile(r"^/(?:api/v1|apis/([^/]+)/[^/]+)/([^/]+)(?:/([^/]+))?$")


def attributes(method: str, path: str, content_type: str = "") -> tuple[str, str, str, str, list[str]]:
    """(api group, resource[/subresource], namespace, name, verbs needed) of a request; a server-side apply
    (PATCH) of an object that may not exist yet needs create as well as patch."""
    found = _NAMESPACED.match(path)
    if found is not None:
        group, namespace, resource, name, sub = (found.group(i) or "" for i in range(1, 6))
    else:
        cluster = _CLUSTER.match(path)
        assert cluster is not None, path
        group, resource, name, namespace, sub = cluster.group(1) or "", cluster.group(2), cluster.group(3) or "", "", ""
    resource = f"{resource}/{sub}" if sub else resource
    verbs = {
        "GET": ["get" if name else "list"],
        "PATCH": ["patch", "create"] if "apply-patch" in content_type else ["patch"],
        "DELETE": ["delete"],
        "POST": ["create"],
    }[method]
    if resource == "pods/exec":
        verbs = ["create"]
    return group, resource, namespace, name, verbs


def allowed(method: str, path: str, content_type: str = "", *, namespace: str) -> bool:
    """Whether the manifest's bound roles (its placeholder namespace read as `namespace`) grant the request."""
    group, resource, where, name, verbs = attributes(method, path, content_type)
    return all(_granted(group, resource, where, name, verb, namespace) for verb in verbs)


def _granted(group: str, resource: str, where: str, name: str, verb: str, namespace: str) -> bool:
    for doc in documents():
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        scope = doc["metadata"].get("namespace")  # type: ignore[union-attr]
        if scope is not None and scope != where:
            continue
        for rule in doc["rules"]:  # type: ignore[union-attr]
            names = [namespace if n == PLACEHOLDER else n for n in rule.get("resourceNames", [])]
            if (
                group in rule["apiGroups"]
                and resource in rule["resources"]
                and verb in rule["verbs"]
                and (not names or (name in names and verb != "create") or (verb == "create" and not names))
            ):
                return True
    return False


def test_kube_system_is_read_by_name_only() -> None:
    [role] = [d for d in documents() if d["kind"] == "Role" and d["metadata"]["name"] == "peerprobe-attach-read"]  # type: ignore[index]
    named = {name for rule in role["rules"] for name in rule["resourceNames"]}  # type: ignore[index]
    assert named == {AWS_NODE[1], KUBE_PROXY_CONFIG[1]}


def test_every_role_is_bound() -> None:
    roles = {(d["kind"], d["metadata"]["name"]) for d in documents() if d["kind"] in ("Role", "ClusterRole")}  # type: ignore[index]
    bound = {(d["roleRef"]["kind"], d["roleRef"]["name"]) for d in documents() if str(d["kind"]).endswith("Binding")}  # type: ignore[index]
    assert roles == bound
