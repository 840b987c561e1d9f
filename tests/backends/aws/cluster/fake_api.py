"""A small fake Kubernetes API server (threaded http.server on 127.0.0.1) implementing just what the client
calls: server-side apply PATCH of deployments, services and daemonsets, strategic merge patch of a
DaemonSet's container env, GET and list, DaemonSet rollout status that catches up one read later, and
pods/exec over a websocket (fake_exec.py). As a cluster on current EKS nodes would, it refuses schema-1
images (containerd 2.x: the pod stays in ErrImagePull), and, when told to, runs pods only on nodes that have
joined and lets a load balancer controller (State.controller) give LoadBalancer Services their hostnames."""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from tests.backends.aws.cluster import fake_exec

_EXEC = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec$")
_NAMESPACE = re.compile(r"^/api/v1/namespaces/([^/]+)$")
_PATH = re.compile(r"^/(?:api/v1|apis/apps/v1)/namespaces/([^/]+)/(deployments|services|daemonsets|pods)(?:/([^/]+))?$")
# The CRDs EKS installs that issue 15's topologies use: custom networking's ENIConfig (cluster-scoped, kept under
# namespace "") and security groups for pods' SecurityGroupPolicy; stored as applied, nothing acts on them.
_CRD_PATH = re.compile(
    r"^/apis/(?:crd\.k8s\.amazonaws\.com/v1alpha1()|vpcresources\.k8s\.aws/v1beta1/namespaces/([^/]+))/"
    r"(eniconfigs|securitygrouppolicies)(?:/([^/]+))?$"
)


# Docker image manifest schema 1: containerd 2.0 stopped pulling it unless told to and 2.1 cannot at all
# (containerd RELEASES.md, "Deprecated features"; containerd/containerd#6884), and current EKS AMIs run
# containerd 2.x. registry.k8s.io/echoserver:1.4 is one (issue 12, defect 1).
SCHEMA_1 = ("echoserver:1.4",)
PULL_FAILED = "ErrImagePull"
DEFAULT_POD_IP = "172.16.96.30"


class LoadBalancerController(Protocol):
    """What cloud-provider-aws does for a Service of type LoadBalancer: makes its load balancer when the
    Service is applied, shows its hostname in the status once it has one ("" until then), removes it when the
    Service is deleted."""

    def provision(self, service: dict[str, Any]) -> None: ...

    def hostname(self, service: dict[str, Any]) -> str: ...

    def deprovision(self, service: dict[str, Any]) -> None: ...


@dataclass
class Request:
    method: str
    path: str
    query: str
    content_type: str
    authorization: str


@dataclass
class State:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    lag_reads: int = 1  # reads of a patched DaemonSet before its rollout shows as finished
    exec: fake_exec.ExecState = field(default_factory=fake_exec.ExecState)
    require_nodes: bool = False  # pods run only on a node in `nodes` (else Pending, never ready)
    pod_ips: dict[str, str] = field(default_factory=dict)  # app label -> the pod's IP
    controller: LoadBalancerController | None = None  # None: a hostname at once, as before


def refused_image(image: str) -> bool:
    """Whether a node with containerd 2.x cannot pull `image` (a schema-1 manifest)."""
    return image.rsplit("/", 1)[-1] in SCHEMA_1


def pod_status(pod: dict[str, Any], state: State) -> dict[str, Any]:
    """The kubelet's view of a pod now: Pending (unscheduled while its node has not joined, or its image not
    pulled) or Running with its IP."""
    node = pod["spec"].get("nodeName")
    if state.require_nodes and node not in {n["metadata"]["name"] for n in state.nodes}:
        return {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}
    refused = [c for c in pod["spec"]["containers"] if refused_image(c["image"])]
    if refused:
        waiting = {"reason": PULL_FAILED, "message": f"failed to pull image {refused[0]['image']}: schema 1"}
        statuses = [{"name": c["name"], "ready": False, "state": {"waiting": waiting}} for c in refused]
        return {"phase": "Pending", "containerStatuses": statuses}
    app = pod["metadata"].get("labels", {}).get("app", "")
    return {"phase": "Running", "podIP": state.pod_ips.get(app, DEFAULT_POD_IP)}


def aws_node(
    env: dict[str, str],
    *,
    image: str = "602401143452.dkr.ecr.cn-northwest-1.amazonaws.com.cn/amazon-k8s-cni:v1.20.4-eksbuild.1",
) -> dict[str, Any]:
    container = {"name": "aws-node", "image": image, "env": [{"name": k, "value": v} for k, v in env.items()]}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "aws-node"}},
            "template": {"metadata": {"labels": {"k8s-app": "aws-node"}}, "spec": {"containers": [container]}},
        },
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 3,
            "updatedNumberScheduled": 3,
            "numberAvailable": 3,
            "currentNumberScheduled": 3,
            "numberMisscheduled": 0,
            "numberReady": 3,
        },
    }


def _balanced(service: dict[str, Any]) -> bool:
    return bool(service["spec"].get("type") == "LoadBalancer")


def _deployment_status(deployment: dict[str, Any], pod: dict[str, Any] | None, state: State) -> dict[str, Any]:
    replicas = deployment["spec"].get("replicas", 1)
    running = pod is not None and pod_status(pod, state)["phase"] == "Running"
    return {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": replicas,
        "readyReplicas": replicas if running else 0,
        "updatedReplicas": replicas,
    }


class FakeApiServer:
    def __init__(self) -> None:
        self.state = State()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> tuple[str, str, str | None, str]:
                url = urlsplit(self.path)
                state.requests.append(
                    Request(
                        self.command,
                        url.path,
                        url.query,
                        self.headers.get("Content-Type", ""),
                        self.headers.get("Authorization", ""),
                    )
                )
                if url.path == "/api/v1/nodes":
                    return "", "nodes", None, url.query
                namespace = _NAMESPACE.match(url.path)
                if namespace is not None:  # a Namespace itself: cluster-scoped, kept under ("", "namespaces", name)
                    return "", "namespaces", namespace.group(1), url.query
                match = _PATH.match(url.path)
                if match is None:
                    crd = _CRD_PATH.match(url.path)
                    if crd is None:
                        return "", "", None, url.query
                    return crd.group(2) or "", crd.group(3), crd.group(4), url.query
                return match.group(1), match.group(2), match.group(3), url.query

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                namespace, kind, name, query = self._record()
                exec_path = _EXEC.match(urlsplit(self.path).path)
                if exec_path is not None:
                    self._exec(exec_path.group(1), exec_path.group(2), query)
                elif kind == "nodes":
                    self._send(200, {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": state.nodes})
                elif name is None and kind:
                    items = [o for (ns, k, _), o in list(state.objects.items()) if ns == namespace and k == kind]
                    if "labelSelector=" in query:
                        app = query.split("labelSelector=app%3D", 1)[-1].split("&")[0]
                        items = [o for o in items if o["metadata"].get("labels", {}).get("app") == app]
                    listed = [_view(kind, o) for o in items]
                    self._send(200, {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": listed})
                elif (namespace, kind, name) in state.objects:
                    self._send(200, self._read(namespace, kind, name or ""))
                else:
                    self._send(
                        404,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "reason": "NotFound",
                            "code": 404,
                            "message": f"{kind} {name} not found",
                        },
                    )

            def _exec(self, namespace: str, name: str, query: str) -> None:
                if state.exec.stall_upgrade:  # hold the connection, unanswered, until the server closes
                    state.exec.released.wait(state.exec.max_seconds)
                    self.close_connection = True
                    return
                command, container = fake_exec.exec_request(query)
                try:
                    fake_exec.check_upgrade(
                        self.headers, state.objects.get((namespace, "pods", name)), name, container, state.exec
                    )
                except fake_exec.Refusal as refusal:
                    self._send(refusal.code, refusal.status())
                    return
                record = fake_exec.ExecRecord(
                    pod=name,
                    container=container,
                    command=command,
                    protocols=fake_exec.protocols(self.headers),
                    authorization=self.headers.get("Authorization", ""),
                )
                state.exec.records.append(record)
                self.close_connection = True  # the connection is the websocket's now, never another request's
                self.wfile.write(fake_exec.switching_protocols(self.headers["Sec-WebSocket-Key"]))
                fake_exec.Session(self.rfile, self.wfile, record, state.exec).run()

            def _read(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
                obj = state.objects[(namespace, kind, name)]
                if kind == "daemonsets" and obj["status"]["observedGeneration"] < obj["metadata"]["generation"]:
                    if obj.setdefault("_reads", 0) >= state.lag_reads:
                        obj["status"]["observedGeneration"] = obj["metadata"]["generation"]
                    obj["_reads"] += 1
                return _view(kind, obj)

            def do_DELETE(self) -> None:
                namespace, kind, name, _ = self._record()
                found = state.objects.pop((namespace, kind, name or ""), None)
                if found and kind == "namespaces":  # finalized at once: everything in it goes with it
                    for key in [k for k in state.objects if k[0] == name]:
                        state.objects.pop(key)
                if found and kind == "services" and _balanced(found) and state.controller is not None:
                    state.controller.deprovision(found)
                self._send(200 if found else 404, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

            def do_PATCH(self) -> None:
                namespace, kind, name, _ = self._record()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = (namespace, kind, name or "")
                if self.headers.get("Content-Type") == "application/apply-patch+yaml":
                    self._send(200, self._apply(key, body))
                elif (
                    self.headers.get("Content-Type") == "application/strategic-merge-patch+json"
                    and key in state.objects
                ):
                    self._send(200, self._merge_env(key, body))
                else:
                    self._send(415, {"kind": "Status", "code": 415, "message": "unsupported patch"})

            def _apply(self, key: tuple[str, str, str], body: dict[str, Any]) -> dict[str, Any]:
                obj = copy.deepcopy(body)
                previous = state.objects.get(key)
                generation = (previous["metadata"]["generation"] + 1) if previous else 1
                obj["metadata"]["generation"] = generation
                if key[1] == "deployments":
                    obj["_pod"] = self._pod(key[0], obj)
                if key[1] == "services":
                    spec = obj["spec"]
                    spec.setdefault("clusterIP", "10.100.7.7")
                    held = (previous or {}).get("spec", {}).get("ports", [])
                    for number, port in enumerate(spec.get("ports", [])):
                        if number < len(held) and "nodePort" in held[number]:
                            port.setdefault("nodePort", held[number]["nodePort"])  # an allocation stays
                        if spec.get("type") in ("NodePort", "LoadBalancer") and "nodePort" not in port:
                            port["nodePort"] = self._free_node_port()
                    ingress = [{"hostname": f"{key[2]}.elb.cn-northwest-1.amazonaws.com.cn"}]
                    obj["status"] = {"loadBalancer": {"ingress": ingress}} if _balanced(obj) else {}
                    if _balanced(obj) and state.controller is not None:
                        obj["status"] = {}
                        obj["_controller"] = state.controller
                        if previous is None:
                            state.controller.provision(obj)
                state.objects[key] = obj
                return _view(key[1], obj)

            def _free_node_port(self) -> int:
                """The API server's allocation: the first port of the NodePort range no Service holds."""
                taken = {
                    p.get("nodePort")
                    for (_, kind, _), o in list(state.objects.items())
                    if kind == "services"
                    for p in o["spec"].get("ports", [])
                }
                return next(port for port in range(30000, 32768) if port not in taken)

            def _pod(self, namespace: str, deployment: dict[str, Any]) -> tuple[str, str, str]:
                template = deployment["spec"]["template"]
                name = f"{deployment['metadata']['name']}-abc"
                pod: dict[str, Any] = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": template["metadata"]["labels"],
                    },
                    "spec": {
                        "nodeName": template["spec"].get("nodeName"),
                        "containers": template["spec"]["containers"],
                    },
                }
                key = (namespace, "pods", name)
                state.objects[key] = pod
                return key

            def _merge_env(self, key: tuple[str, str, str], body: dict[str, Any]) -> dict[str, Any]:
                obj = state.objects[key]
                for patch in body["spec"]["template"]["spec"]["containers"]:
                    container = next(
                        c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == patch["name"]
                    )
                    env = {e["name"]: e for e in container.get("env", [])}
                    for item in patch.get("env", []):
                        if item.get("$patch") == "delete":
                            env.pop(item["name"], None)
                        else:
                            env[item["name"]] = item
                    container["env"] = list(env.values())
                obj["metadata"]["generation"] += 1
                obj["_reads"] = 0
                return {k: v for k, v in obj.items() if not k.startswith("_")}

        def _view(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
            """What a read answers: the stored object with its status as of now."""
            shown = {k: v for k, v in obj.items() if not k.startswith("_")}
            if kind == "pods":
                shown["status"] = pod_status(obj, state)
            elif kind == "deployments" and "_pod" in obj:
                shown["status"] = _deployment_status(obj, state.objects.get(obj["_pod"]), state)
            elif kind == "services" and "_controller" in obj:
                hostname = obj["_controller"].hostname(obj)
                shown["status"] = {"loadBalancer": {"ingress": [{"hostname": hostname}]}} if hostname else {}
            return shown

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *args: Any) -> None:
        self.state.exec.close()
        self.server.shutdown()
        self.server.server_close()
