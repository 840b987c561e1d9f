"""Client-level fakes for the aws backend's tests: a recorder of every AWS operation (botocore's before-call
event, session-wide) and a fake of the kubernetes side for the experiment's cloud tests. The kubernetes
client itself is tested against a fake API server in cluster/."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.ports import ServiceInfo
from peerprobe.topology import Node, Pod


def on_every_session(monkeypatch: Any, hook: Callable[[Any], None]) -> None:
    """Call `hook` with every botocore session ClientFactory builds from now on (to register event handlers):
    every client any factory makes then goes through them."""
    original = ClientFactory._new_session

    def hooked(factory: ClientFactory) -> Any:
        session = original(factory)
        hook(session)
        return session

    monkeypatch.setattr(ClientFactory, "_new_session", hooked)


@dataclass
class _Scripted:
    answer: Callable[[dict[str, Any]], Any]  # the call's parameters -> its answer; for a rewrite, edits the answer
    times: int
    when: Callable[[dict[str, Any]], bool]


class AwsBehaviour:
    """AWS as it behaves where moto answers at once and never disagrees: per operation ("ec2:DeleteSubnet",
    "elb:DescribeTags": the client's service name), scripted refusals (`fail`), answers to what moto does not
    serve (`answer`) and rewritten answers (`rewrite`) for the next `times` calls, on every client the factories
    build (botocore's before-call, which short-circuits the request, and
    after-call, which may change the parsed answer in place). Botocore does not retry a short-circuited call,
    so each scripted refusal is one answer the adapter sees; `throttle` answers on the wire instead
    (before-send), where botocore's own retries see it. Safe to use from concurrent steps."""

    def __init__(self) -> None:
        self._answers: dict[str, list[_Scripted]] = {}
        self._rewrite: dict[str, list[_Scripted]] = {}
        self._throttled: dict[str, list[_Scripted]] = {}
        self._lock = threading.RLock()  # a rewrite may call AWS itself (as AWS's own side), in the same thread
        self.answered: list[str] = []  # "ec2:DeleteSubnet DependencyViolation", in order
        self.seen: list[str] = []  # every operation called, in order

    def fail(
        self,
        operation: str,
        code: str,
        *,
        times: int = 1,
        message: str = "",
        status: int = 400,
        when: Callable[[dict[str, Any]], bool] = lambda params: True,
    ) -> None:
        """The next `times` calls of `operation` (whose parameters satisfy `when`) are refused with `code`."""
        error = {"Error": {"Code": code, "Message": message or code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        self._answers.setdefault(operation, []).append(_Scripted(lambda params: error, times, when))

    def answer(self, operation: str, make: Callable[[dict[str, Any]], dict[str, Any]], *, times: int = 10**9) -> None:
        """The next `times` calls of `operation` are answered by `make(parameters)` (operations moto lacks)."""
        self._answers.setdefault(operation, []).append(
            _Scripted(
                lambda params: make(params) | {"ResponseMetadata": {"HTTPStatusCode": 200}}, times, lambda params: True
            )
        )

    def rewrite(self, operation: str, change: Callable[[dict[str, Any]], bool], *, times: int = 1) -> None:
        """Successful answers of `operation` pass through `change`, which edits one in place and says whether
        it changed anything; after `times` changed answers it stops."""
        self._rewrite.setdefault(operation, []).append(_Scripted(change, times, lambda params: True))

    def throttle(self, operation: str, code: str, *, times: int) -> None:
        """The next `times` sends of `operation` ("ec2:DescribeSubnets", "elb:DescribeLoadBalancers") are
        answered 400 `code` on the wire, each attempt botocore makes counting as one."""
        self._throttled.setdefault(operation, []).append(_Scripted(lambda params: code, times, lambda params: True))

    def calls(self, operation: str) -> int:
        """How many times `operation` was called (answered by AWS, moto or this script)."""
        return self.seen.count(operation)

    def install(self, monkeypatch: Any) -> None:
        def hook(session: Any) -> None:
            session.events.register("before-parameter-build", _keep_api_params)
            session.events.register_last("before-call", self._before)  # after the Recorder: it sees every call
            session.events.register("after-call", self._after)
            session.events.register_first("before-send", self._send)

        on_every_session(monkeypatch, hook)

    def _send(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        _, service_id, name = event_name.split(".", 2)
        operation = f"{_SERVICE_NAMES.get(service_id, service_id)}:{name}"
        scripted = self._next(self._throttled, operation, {})
        if scripted is None:
            return None
        code = scripted.answer({})
        with self._lock:
            self.answered.append(f"{operation} {code}")
        return wire_error(service_id, code, request.url)

    def _before(self, model: Any, context: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, Any] | None:
        operation = f"{model.service_model.service_name}:{model.name}"
        api_params = context.get(_API_PARAMS, {})
        with self._lock:
            self.seen.append(operation)
        scripted = self._next(self._answers, operation, api_params)
        if scripted is None:
            return None
        response = scripted.answer(api_params)
        with self._lock:
            self.answered.append(f"{operation} {response.get('Error', {}).get('Code', 'answered')}")
        return AWSResponse("https://aws.invalid/", response["ResponseMetadata"]["HTTPStatusCode"], {}, None), response

    def _after(self, model: Any, parsed: dict[str, Any], http_response: Any, **kwargs: Any) -> None:
        if http_response.status_code >= 300:
            return
        with self._lock:
            for scripted in self._rewrite.get(f"{model.service_model.service_name}:{model.name}", []):
                if scripted.times > 0 and scripted.answer(parsed):
                    scripted.times -= 1
                    return

    def _next(self, table: dict[str, list[_Scripted]], operation: str, params: dict[str, Any]) -> _Scripted | None:
        with self._lock:
            for scripted in table.get(operation, []):
                if scripted.times > 0 and scripted.when(params):
                    scripted.times -= 1
                    return scripted
        return None


# botocore's event names carry the service id (hyphenated); the operations here are named by the client's name.
_SERVICE_NAMES = {"elastic-load-balancing": "elb", "elastic-load-balancing-v2": "elbv2"}


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Any:
        yield self.body


def wire_error(service_id: str, code: str, url: str) -> AWSResponse:
    """A 400 answer with `code` as each protocol writes errors: EC2's XML, the query protocol's ErrorResponse
    (ELB, IAM, STS), or the JSON protocols' header and body (EKS, SSM)."""
    message = "Rate exceeded"
    if service_id == "ec2":
        body = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors></Response>"
        return AWSResponse(url, 400, {}, _Body(body.encode()))
    if service_id in ("eks", "ssm"):
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
        return AWSResponse(url, 400, headers, _Body(f'{{"__type": "{code}", "message": "{message}"}}'.encode()))
    error = f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
    return AWSResponse(url, 400, {}, _Body(f"<ErrorResponse>{error}</ErrorResponse>".encode()))


_API_PARAMS = "peerprobe_tests_api_params"


def _keep_api_params(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
    """before-call sees only the serialized request; `when` predicates read the call's own parameters."""
    context[_API_PARAMS] = dict(params)


class Recorder:
    """`service:Operation` of every call any client of the wrapped factories makes, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model: Any, **kwargs: Any) -> None:
        self.calls.append(f"{model.service_model.signing_name}:{model.name}")

    def install(self, monkeypatch: Any) -> None:
        on_every_session(monkeypatch, lambda session: session.events.register("before-call", self))

    def mutations(self) -> list[str]:
        reads = ("Describe", "Get", "List")
        return [c for c in self.calls if not c.split(":", 1)[1].startswith(reads)]


def service(
    name: str,
    *,
    type_: str = "ClusterIP",
    node_port: int | None = None,
    hostname: str = "",
    cluster_ip: str = "10.100.128.161",
) -> ServiceInfo:
    return ServiceInfo(
        name=name,
        type=type_,
        port=80,
        target_port=8080,
        node_port=node_port,
        cluster_ip=cluster_ip,
        external_traffic_policy="Cluster",
        hostname=hostname,
    )


@dataclass
class FakeKube:
    """What AwsExperiment asks of a cluster, in memory; records applies, patches and execs."""

    name: str
    nodes_: list[Node]
    env: dict[str, str] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    execs: list[tuple[str, str]] = field(default_factory=list)
    exec_output: Callable[[str], str] = lambda script: ""
    services_: list[ServiceInfo] = field(default_factory=list)
    on_delete_services: Callable[[], None] = lambda: None
    rollouts: int = 0

    def nodes(self) -> list[Node]:
        return self.nodes_

    def pod(self, app: str) -> Pod | None:
        return Pod(ip=f"{self.nodes_[0].ip[:-1]}9", node=self.nodes_[0].name) if self.applied else None

    def apply(self, manifests: Sequence[dict[str, Any]]) -> None:
        self.applied += manifests

    def wait_deployments(self, *, timeout_seconds: float) -> None:
        pass

    def wait_ready(self, *, timeout_seconds: float) -> None:
        pass

    def services(self) -> list[ServiceInfo]:
        return self.services_

    def aws_node_env(self) -> dict[str, str]:
        return dict(self.env)

    def cni_version(self) -> str:
        return "1.20.4"

    def patch_aws_node_env(self, assignments: Sequence[str]) -> dict[str, str]:
        from peerprobe import aws_node

        self.env = aws_node.apply_assignments(self.env, list(assignments))
        return dict(self.env)

    def wait_rollout(self, *, timeout_seconds: float) -> None:
        self.rollouts += 1

    def exec_in(self, app: str, script: str, *, timeout_seconds: float) -> str:
        self.execs.append((app, script))
        return self.exec_output(script)

    def delete_load_balancer_services(self) -> list[str]:
        self.on_delete_services()
        deleted = [s.name for s in self.services_ if s.type == "LoadBalancer"]
        self.services_ = [s for s in self.services_ if s.type != "LoadBalancer"]
        return deleted
