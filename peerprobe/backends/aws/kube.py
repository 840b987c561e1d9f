"""The Cluster port on EKS, with the official kubernetes client: configuration built in-process from
describe_cluster (endpoint, CA) and a refreshed EKS token; server-side apply; aws-node's env patched like
`kubectl set env`; rollout and readiness waits; one exec per batch; the live configuration read back."""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error
from websocket import WebSocketBadStatusException, WebSocketException

from peerprobe import aws_node, statedir
from peerprobe.backends.aws._base import Waits
from peerprobe.backends.aws._token import TokenSource
from peerprobe.backends.ports import EksCluster, ServiceInfo
from peerprobe.errors import (
    ConfigError,
    ConflictError,
    CredentialsError,
    InfrastructureError,
    NotFoundError,
    TransientError,
    WaitTimeoutError,
)
from peerprobe.topology import Node, Pod

log = structlog.get_logger()
FIELD_MANAGER = "peerprobe"
NAMESPACE = "default"
AWS_NODE = ("kube-system", "aws-node")
APPLY = "application/apply-patch+yaml"
STRATEGIC = "application/strategic-merge-patch+json"
MAX_DETAIL = 200
KUBE_MAX_CHECKS = 1000


def kube_errors(kind: str, name: str) -> Any:
    """Map the API server's HTTP status to peerprobe's tree, most specific first, message cut short."""
    return _KubeErrors(kind, name)


class _KubeErrors:
    def __init__(self, kind: str, name: str) -> None:
        self.subject = f"{kind} {name}"
        self.kind, self.name = kind, name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if isinstance(error, ApiException):
            status, reason = int(error.status or 0), str(error.reason or "")
            raise translate_status(status, reason, kind=self.kind, name=self.name) from error
        if isinstance(error, Urllib3Error | OSError) and not isinstance(error, InfrastructureError):
            raise TransientError(
                f"{self.subject}: {type(error).__name__}: {str(error)[:MAX_DETAIL]}",
                resource=self.kind,
                resource_id=self.name,
                state="unreachable",
            ) from error


def translate_status(status: int, reason: str, *, kind: str, name: str) -> Exception:
    message = f"{kind} {name}: HTTP {status} {reason[:MAX_DETAIL]}".strip()
    if status == 401:
        return CredentialsError(f"{message} (the EKS token was refused: is the caller mapped in the cluster?)")
    if status == 403:
        return InfrastructureError(message, resource=kind, resource_id=name, state="forbidden")
    if status == 404:
        return NotFoundError(message, resource=kind, resource_id=name, state="absent")
    if status == 409:
        return ConflictError(message, resource=kind, resource_id=name, state="conflict")
    if status == 422 or status == 400:
        return ConfigError(f"{message}: the API server refused the manifest")
    if status == 429 or status >= 500:
        return TransientError(message, resource=kind, resource_id=name, state=str(status))
    return InfrastructureError(message, resource=kind, resource_id=name, state=str(status))


# --- configuration ---------------------------------------------------------------------------------------


def configuration(cluster: EksCluster, tokens: TokenSource) -> Any:
    """A kubernetes Configuration for the cluster: its endpoint, its CA (written to the state directory; a CA
    is public), and a bearer token the client asks for before every request, refreshed at ~14 minutes."""
    if not cluster.endpoint or not cluster.certificate_authority:
        raise ConflictError(
            f"eks cluster {cluster.name}: no endpoint or CA yet (status {cluster.status})",
            resource="eks cluster",
            resource_id=cluster.name,
            state=cluster.status,
        )
    conf = k8s.Configuration()
    conf.host = cluster.endpoint
    conf.ssl_ca_cert = str(_ca_file(cluster))
    conf.verify_ssl = True
    conf.api_key_prefix = {"authorization": "Bearer"}
    conf.api_key = {"authorization": tokens.token()}
    conf.refresh_api_key_hook = lambda c: c.api_key.__setitem__("authorization", tokens.token())
    return conf


def _ca_file(cluster: EksCluster) -> Path:
    folder = statedir.state_dir() / "aws" / "ca"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cluster.name}.crt"
    path.write_bytes(base64.b64decode(cluster.certificate_authority))
    return path


def api_client(conf: Any) -> Any:
    return k8s.ApiClient(conf)


# --- exec ------------------------------------------------------------------------------------------------


class Exec(Protocol):
    """Runs `script` with sh in a pod's container and returns its standard output."""

    def __call__(self, core: Any, *, pod: str, namespace: str, container: str, script: str, timeout: float) -> str: ...


def stream_exec(core: Any, *, pod: str, namespace: str, container: str, script: str, timeout: float) -> str:
    """`kubectl exec POD -- sh -c SCRIPT` over the API server's websocket, bounded by `timeout`: the standard
    output, once the exit Status says Success; a non-zero exit (or no Status at all) is raised."""
    subject, deadline = f"exec in {namespace}/{pod}", time.monotonic() + timeout
    opening = _Opening(lambda: _open_exec(core, pod=pod, namespace=namespace, container=container, script=script))
    response = opening.result(deadline, subject=subject, pod=pod)
    try:
        _until_closed(response, deadline, subject=subject, pod=pod)
    except WebSocketException as error:  # the stream broke off mid-way (not an OSError, so not kube_errors')
        raise TransientError(
            f"{subject}: {type(error).__name__}: {str(error)[:MAX_DETAIL]}",
            resource="pod",
            resource_id=pod,
            state="disconnected",
        ) from error
    finally:
        response.close()
    failure = exit_error(
        response.read_channel(ERROR_CHANNEL), response.read_channel(STDERR_CHANNEL), subject=subject, pod=pod
    )
    if failure is not None:
        raise failure
    return str(response.read_channel(STDOUT_CHANNEL))


# v4.channel.k8s.io: each websocket message starts with its channel (the POSIX descriptors, then 3 for the exit
# Status as JSON): https://github.com/kubernetes/kubernetes/blob/master/staging/src/k8s.io/apimachinery/pkg/
# util/httpstream/wsstream/conn.go and .../kubelet/pkg/cri/streaming/remotecommand/httpstream.go.
STDOUT_CHANNEL, STDERR_CHANNEL, ERROR_CHANNEL = 1, 2, 3


def _open_exec(core: Any, *, pod: str, namespace: str, container: str, script: str) -> Any:
    """The upgraded connection; a refused upgrade is translated by its HTTP status (the client reports every
    refusal as status 0, with websocket-client's exception as the context)."""
    from kubernetes.stream import stream

    try:
        return stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            container=container,
            command=["sh", "-c", script],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
    except ApiException as error:
        refused = error.__context__
        if isinstance(refused, WebSocketBadStatusException):
            reason = _status_message(refused.resp_body) or str(refused.status_message or "")
            status = int(refused.status_code)
            raise translate_status(status, reason, kind="pod exec", name=f"{namespace}/{pod}") from error
        if isinstance(refused, OSError):
            raise TransientError(
                f"pod exec {namespace}/{pod}: {str(refused)[:MAX_DETAIL]}",
                resource="pod exec",
                resource_id=f"{namespace}/{pod}",
                state="unreachable",
            ) from error
        raise


class _Opening:
    """The exec's connect and upgrade, bounded: websocket-client waits for both without a timeout (the kubernetes
    client passes none), so they run in a daemon thread; a connection that arrives after the deadline, when
    nobody wants it any more, is closed on arrival."""

    def __init__(self, open_exec: Callable[[], Any]) -> None:
        self.done, self.lock, self.abandoned = threading.Event(), threading.Lock(), False
        self.outcome: tuple[Any, BaseException | None] = (None, None)
        threading.Thread(target=self._run, args=(open_exec,), name="peerprobe-exec-open", daemon=True).start()

    def _run(self, open_exec: Callable[[], Any]) -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (open_exec(), None)
        except BaseException as error:  # handed to the waiting caller, who raises it
            outcome = (None, error)
        with self.lock:
            if self.abandoned and outcome[0] is not None:
                outcome[0].close()
            self.outcome = outcome
            self.done.set()

    def result(self, deadline: float, *, subject: str, pod: str) -> Any:
        """The upgraded connection, the opening's own error, or WaitTimeoutError at `deadline`."""
        self.done.wait(timeout=max(0.0, deadline - time.monotonic()))
        with self.lock:
            if not self.done.is_set():
                self.abandoned = True
                raise WaitTimeoutError(
                    f"{subject}: the websocket was not open (connect and upgrade) by the deadline",
                    resource="pod",
                    resource_id=pod,
                    state="upgrading",
                )
        response, error = self.outcome
        if error is not None:
            raise error
        return response


def _until_closed(response: Any, deadline: float, *, subject: str, pod: str) -> None:
    """Buffer the channels' frames until the server closes the stream; WaitTimeoutError at `deadline`."""
    while response.is_open():
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeoutError(
                f"{subject}: still running at its deadline", resource="pod", resource_id=pod, state="running"
            )
        response.update(timeout=min(1.0, left))


def exit_error(status: str, stderr: str, *, subject: str, pod: str) -> InfrastructureError | None:
    """None for the Status "Success"; else the error to raise: the exit code (NonZeroExitCode's ExitCode
    cause, kubelet/pkg/cri/streaming/remotecommand/exec.go) with the start of stderr, or the Status message."""
    if not status:
        return TransientError(
            f"{subject}: the stream closed without an exit status", resource="pod", resource_id=pod, state="no status"
        )
    found = _json_object(status)
    if found.get("status") == "Success":
        return None
    causes = (found.get("details") or {}).get("causes") or []
    codes = [str(c.get("message")) for c in causes if c.get("reason") == "ExitCode"]
    if codes:
        detail = " ".join(stderr.split())[:MAX_DETAIL]
        return InfrastructureError(
            f"{subject}: exit status {codes[0]}" + (f"; stderr: {detail}" if detail else ""),
            resource="pod",
            resource_id=pod,
            state=f"exit {codes[0]}",
        )
    return InfrastructureError(
        f"{subject}: {str(found.get('message', 'failed'))[:MAX_DETAIL]}",
        resource="pod",
        resource_id=pod,
        state=str(found.get("reason", "Failure")),
    )


def _status_message(body: bytes | None) -> str:
    """The message of the API server's Status in a refused upgrade's body, else ""."""
    return str(_json_object(body or b"{}").get("message", ""))


def _json_object(text: str | bytes) -> dict[str, Any]:
    """A JSON object, or the text itself as {"message": text} when it is not one."""
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if isinstance(found, dict):
        return found
    return {"message": text.decode(errors="replace") if isinstance(text, bytes) else text}


# --- the cluster ------------------------------------------------------------------------------------------


_NAMESPACE_PATH = "/api/v1/namespaces/{name}"
_NEVER_DELETED = frozenset({NAMESPACE, "kube-system", "kube-public", "kube-node-lease"})
# Where server-side apply sends each kind peerprobe applies (the typed client methods of kubernetes 35 always
# send json-patch+json, so the patch goes through call_api with the content type we choose).
_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "Service": "/api/v1/namespaces/{namespace}/services/{name}",
    "DaemonSet": "/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}",
    # Custom networking's ENIConfig (cluster-scoped, the VPC CNI's CRD) and security groups for pods'
    # SecurityGroupPolicy (the VPC resource controller's CRD); both CRDs come with EKS.
    "ENIConfig": "/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs/{name}",
    "SecurityGroupPolicy": "/apis/vpcresources.k8s.aws/v1beta1/namespaces/{namespace}/securitygrouppolicies/{name}",
}


class KubeCluster:
    """One EKS cluster through the kubernetes client (the Cluster port of ports.py)."""

    def __init__(
        self,
        client: Any,
        *,
        name: str,
        exec_runner: Exec = stream_exec,
        resolver: Callable[[str], list[str]] | None = None,
        poll_seconds: float = 2.0,
        load_balancer_ready: Callable[[str], bool] | None = None,
        namespace: str = NAMESPACE,
    ) -> None:
        """`load_balancer_ready(hostname)`, when given, is asked too before a load balancer counts as ready:
        on AWS, whether its targets are healthy (AwsCloud.target_health(hostname).settled); new NLB targets
        stay `initial` and Classic instances `OutOfService` for minutes after the name resolves."""
        self.name = name
        self.namespace = namespace  # attach mode: peerprobe-<experiment>, the only place it writes (design.md)
        self.client = client
        self.core = k8s.CoreV1Api(client)
        self.apps = k8s.AppsV1Api(client)
        self._exec = exec_runner
        self._resolve = resolver or resolve
        self._load_balancer_ready = load_balancer_ready or (lambda hostname: True)
        # Readiness waits are bounded by their callers' time caps; the attempt cap only backs that up.
        self.waits = Waits(delay=poll_seconds, max_delay=15, max_attempts=KUBE_MAX_CHECKS)
        self._applied: list[tuple[str, str, str]] = []

    # --- apply ------------------------------------------------------------------------------------------

    def apply(self, manifests: Sequence[Mapping[str, object]]) -> None:
        """Server-side apply of every document, field manager "peerprobe", forcing ownership of our fields."""
        for doc in manifests:
            kind, meta = str(doc.get("kind")), doc.get("metadata")
            if kind not in _PATHS or not isinstance(meta, Mapping):
                raise ConfigError(f"manifest {kind}: peerprobe applies only {', '.join(_PATHS)}")
            name, namespace = str(meta["name"]), self._namespace_of(meta)
            path = _PATHS[kind].format(namespace=namespace, name=name)
            with kube_errors(kind.lower(), f"{namespace}/{name}"):
                # The API server refuses a body whose namespace differs from the path's: both say the same.
                body = dict(doc) | {"metadata": {**meta, "namespace": namespace}}
                self._patch(path, body, content_type=APPLY, force=True)
            self._applied.append((kind, namespace, name))
            log.info("kube.applied", cluster=self.name, kind=kind, name=name, namespace=namespace)

    def _namespace_of(self, meta: Mapping[str, object]) -> str:
        """The manifest's namespace on a cluster peerprobe created; on an attached one (a namespace of its own)
        always that namespace: attach mode writes nowhere else (design.md)."""
        if self.namespace != NAMESPACE:
            return self.namespace
        return str(meta.get("namespace", NAMESPACE))

    def _patch(self, path: str, body: Any, *, content_type: str, force: bool = False) -> Any:
        query = [("fieldManager", FIELD_MANAGER)] + ([("force", "true")] if force else [])
        return self.client.call_api(
            path,
            "PATCH",
            query_params=query,
            body=body,
            response_type="object",
            auth_settings=["BearerToken"],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            _return_http_data_only=True,
        )

    # --- aws-node ---------------------------------------------------------------------------------------

    def aws_node(self) -> Any:
        with kube_errors("daemonset", "/".join(AWS_NODE)):
            return self.apps.read_namespaced_daemon_set(AWS_NODE[1], AWS_NODE[0])

    def aws_node_env(self) -> dict[str, str]:
        """aws-node's literal env (valueFrom entries are not settings peerprobe reads)."""
        container = _container(self.aws_node(), "aws-node")
        return {e.name: e.value for e in (container.env or []) if e.value is not None}

    def cni_version(self) -> str:
        """The VPC CNI's version: the aws-node image tag (…/amazon-k8s-cni:v1.20.4-eksbuild.1 -> 1.20.4)."""
        image = str(_container(self.aws_node(), "aws-node").image or "")
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        return tag.removeprefix("v").split("-", 1)[0]

    def patch_aws_node_env(self, assignments: Sequence[str]) -> dict[str, str]:
        """`kubectl set env daemonset aws-node -n kube-system`: a strategic merge patch of the container's env
        (NAME=VALUE sets, NAME- deletes the entry); returns the env read back."""
        try:
            aws_node.apply_assignments({}, list(assignments))
        except ValueError as error:
            raise ConfigError(f"set-env: {error}") from None
        env: list[dict[str, str]] = []
        for item in assignments:
            if item.endswith("-") and "=" not in item:
                env.append({"name": item[:-1], "$patch": "delete"})
            else:
                name, value = item.split("=", 1)
                env.append({"name": name, "value": value})
        body = {"spec": {"template": {"spec": {"containers": [{"name": "aws-node", "env": env}]}}}}
        path = _PATHS["DaemonSet"].format(namespace=AWS_NODE[0], name=AWS_NODE[1])
        with kube_errors("daemonset", "/".join(AWS_NODE)):
            self._patch(path, body, content_type=STRATEGIC)
        log.info("kube.aws_node_patched", cluster=self.name, names=[e["name"] for e in env])
        return self.aws_node_env()

    def wait_rollout(self, *, timeout_seconds: float) -> None:
        """Until the DaemonSet's controller saw the new spec and every node runs an available updated pod."""
        self._until(lambda: rolled_out(self.aws_node()), timeout_seconds, what="aws-node rollout")

    # --- readiness --------------------------------------------------------------------------------------

    def wait_deployments(self, *, timeout_seconds: float) -> None:
        names = [name for kind, _, name in self._applied if kind == "Deployment"]
        self._until(lambda: all(self._deployment_ready(n) for n in names), timeout_seconds, what="deployments")

    def _deployment_ready(self, name: str) -> bool:
        with kube_errors("deployment", name):
            return deployment_ready(self.apps.read_namespaced_deployment(name, self.namespace))

    def wait_ready(self, *, timeout_seconds: float) -> None:
        """Deployments ready, then every LoadBalancer Service with a hostname that resolves."""
        deadline = time.monotonic() + timeout_seconds
        self.wait_deployments(timeout_seconds=timeout_seconds)
        self._until(self._load_balancers_answer, max(0.0, deadline - time.monotonic()), what="load balancers")

    def _load_balancers_answer(self) -> bool:
        hostnames = [s.hostname for s in self.services() if s.type == "LoadBalancer"]
        return all(h and self._resolve(h) and self._load_balancer_ready(h) for h in hostnames)

    def _until(self, ready: Callable[[], bool], timeout_seconds: float, *, what: str) -> None:
        self.waits.poll(
            lambda: True if ready() else None,
            kind="cluster",
            resource_id=self.name,
            goal="ready",
            max_seconds=timeout_seconds,
            state=lambda: f"{what} not ready",
        )
        log.info("kube.ready", cluster=self.name, what=what)

    # --- reading ----------------------------------------------------------------------------------------

    def services(self) -> list[ServiceInfo]:
        with kube_errors("services", self.namespace):
            return [service_info(item) for item in self.core.list_namespaced_service(self.namespace).items]

    def nodes(self) -> list[Node]:
        """The cluster's nodes ordered by primary address (the placement's "first" and "last" node)."""
        with kube_errors("nodes", self.name):
            raw = self.core.list_node().items
        nodes = [_node(item) for item in raw]
        return sorted(nodes, key=lambda n: (ipaddress.IPv4Address(n.ip) if n.ip else ipaddress.IPv4Address(0), n.name))

    def pod(self, app: str) -> Pod | None:
        """The running pod of the Deployment labelled app=<app>, if any."""
        with kube_errors("pods", app):
            items = self.core.list_namespaced_pod(self.namespace, label_selector=f"app={app}").items
        running = [p for p in items if p.status and p.status.phase == "Running" and p.status.pod_ip]
        if not running:
            return None
        return Pod(ip=str(running[0].status.pod_ip), node=str(running[0].spec.node_name))

    def exec_in(self, app: str, script: str, *, timeout_seconds: float) -> str:
        """ONE exec running `script` in the pod of app=<app> (its first container)."""
        with kube_errors("pods", app):
            items = self.core.list_namespaced_pod(self.namespace, label_selector=f"app={app}").items
        running = [p for p in items if p.status and p.status.phase == "Running"]
        if not running:
            raise NotFoundError(
                f"cluster {self.name}: no running pod app={app}", resource="pod", resource_id=app, state="absent"
            )
        pod = running[0]
        with kube_errors("exec", pod.metadata.name):
            container = pod.spec.containers[0].name
            return self._exec(
                self.core,
                pod=pod.metadata.name,
                namespace=self.namespace,
                container=container,
                script=script,
                timeout=timeout_seconds,
            )

    def delete_load_balancer_services(self) -> list[str]:
        """Delete every Service of type LoadBalancer (the controllers then remove their load balancers)."""
        deleted = []
        for service in self.services():
            if service.type != "LoadBalancer":
                continue
            try:
                with kube_errors("service", service.name):
                    self.core.delete_namespaced_service(service.name, self.namespace)
            except NotFoundError:
                continue
            deleted.append(service.name)
        log.info("kube.load_balancer_services_deleted", cluster=self.name, services=deleted)
        return deleted

    # --- attach mode: a namespace of its own ----------------------------------------------------------------

    def ensure_namespace(self) -> None:
        """Server-side apply of this cluster's namespace, labelled as peerprobe's (attach mode writes only there)."""
        doc = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER}},
        }
        with kube_errors("namespace", self.namespace):
            self._patch(_NAMESPACE_PATH.format(name=self.namespace), doc, content_type=APPLY, force=True)
        log.info("kube.namespace_applied", cluster=self.name, namespace=self.namespace)

    def delete_namespace(self, *, timeout_seconds: float) -> None:
        """Delete this cluster's namespace and everything in it, then until the API server no longer has it
        (namespaces finalize: their objects go first). Refuses the namespaces peerprobe never owns."""
        if self.namespace in _NEVER_DELETED:
            raise ConfigError(f"cluster {self.name}: peerprobe never deletes the namespace {self.namespace!r}")
        try:
            with kube_errors("namespace", self.namespace):
                self.core.delete_namespace(self.namespace)
        except NotFoundError:
            return
        self._until(self._namespace_gone, timeout_seconds, what=f"namespace {self.namespace} deleted")
        log.info("kube.namespace_deleted", cluster=self.name, namespace=self.namespace)

    def _namespace_gone(self) -> bool:
        return not self.namespace_exists()

    def namespace_exists(self) -> bool:
        try:
            with kube_errors("namespace", self.namespace):
                self.core.read_namespace(self.namespace)
        except NotFoundError:
            return False
        return True


def rolled_out(daemonset: Any) -> bool:
    """kubectl rollout status for a DaemonSet: the controller observed the current generation and every
    scheduled pod is updated and available."""
    status, generation = daemonset.status, daemonset.metadata.generation or 0
    if status is None or (status.observed_generation or 0) < generation:
        return False
    desired = status.desired_number_scheduled or 0
    return (status.updated_number_scheduled or 0) == desired and (status.number_available or 0) >= desired


def deployment_ready(deployment: Any) -> bool:
    status, generation = deployment.status, deployment.metadata.generation or 0
    wanted = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    if status is None or (status.observed_generation or 0) < generation:
        return False
    return (status.ready_replicas or 0) >= wanted and (status.updated_replicas or 0) >= wanted


def service_info(item: Any) -> ServiceInfo:
    """A V1Service as peerprobe's own value: the first port (every Service of resources/ has one)."""
    spec, meta = item.spec, item.metadata
    port = spec.ports[0] if spec.ports else None
    ingress = (item.status.load_balancer.ingress or []) if item.status and item.status.load_balancer else []
    return ServiceInfo(
        name=str(meta.name),
        type=str(spec.type or "ClusterIP"),
        port=int(port.port) if port else 0,
        target_port=_target_port(port),
        node_port=int(port.node_port) if port and port.node_port else None,
        health_check_node_port=int(spec.health_check_node_port) if spec.health_check_node_port else None,
        cluster_ip=None if spec.cluster_ip in (None, "None") else str(spec.cluster_ip),
        external_traffic_policy=spec.external_traffic_policy,
        load_balancer_source_ranges=tuple(spec.load_balancer_source_ranges or ()),
        annotations=dict(meta.annotations or {}),
        hostname=str(ingress[0].hostname or ingress[0].ip or "") if ingress else "",
    )


def _target_port(port: Any) -> int:
    # targetPort may be a name; the Services of resources/ use numbers, and the API server defaults it to port.
    if port is None:
        return 0
    target = port.target_port
    return int(target) if isinstance(target, int) or str(target or "").isdigit() else int(port.port)


def resolve(hostname: str) -> list[str]:
    """The IPv4 addresses a name resolves to here; [] while DNS has not caught up."""
    try:
        return sorted({str(a[4][0]) for a in socket.getaddrinfo(hostname, 80, socket.AF_INET)})
    except OSError:
        return []


def _container(daemonset: Any, name: str) -> Any:
    for container in daemonset.spec.template.spec.containers:
        if container.name == name:
            return container
    raise NotFoundError(f"daemonset aws-node: no container {name}", resource="daemonset", resource_id=name)


def _node(item: Any) -> Node:
    internal = [a.address for a in item.status.addresses or [] if a.type == "InternalIP"]
    external = [a.address for a in item.status.addresses or [] if a.type == "ExternalIP"]
    labels = item.metadata.labels or {}
    return Node(
        name=str(item.metadata.name),
        ip=internal[0] if internal else "",
        az=labels.get("topology.kubernetes.io/zone", ""),
        subnet="public" if external else "private",
        public_ip=external[0] if external else None,
        addresses=internal,
    )
