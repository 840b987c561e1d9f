"""What AWS serves and moto does not, answered for the lab's clients so the steps call AWS exactly as on AWS:
the EKS add-on API (DescribeAddonVersions, CreateAddon, UpdateAddon, DescribeAddon), SSM's public AMI
parameters, and Elastic IPs from the lab's own public pool (RFC 5737 documentation addresses, never routable).

Installed on the botocore session of the lab's client factory (botocore event hooks); nothing else differs.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

from peerprobe import statedir
from peerprobe.backends.aws.hooks import json_response as _response
from peerprobe.topology import nat_gateway_address

log = structlog.get_logger()
LAB_IMAGE = "ami-0123456789abcdef0"  # moto launches any image id; nothing boots
ADDONS_STATE = "lab/eks-addons.json"  # "<region>/<cluster>" -> the vpc-cni add-on as the lab's EKS keeps it
_NAT_EIP = re.compile(r"^(vpc1|vpc2)-nat-eip$")
_offered: set[str] = set()  # vpc-cni versions (x.y.z) the lab's EKS offers: those of the configs it serves
_lock = threading.Lock()


def offer_cni(*versions: str) -> None:
    """The lab's EKS offers `v<version>-eksbuild.1` of the vpc-cni add-on for every Kubernetes version."""
    with _lock:
        _offered.update(versions)


def install(events: Any, *, region: str) -> None:
    """Register the stand-ins on a botocore session's event system (the client factory calls this once)."""
    events.register_first("before-send.eks", lambda request, event_name, **_: _eks_addons(request, event_name, region))
    events.register_first("before-send.ssm.GetParameter", _public_parameter)
    events.register("provide-client-params.ec2.AllocateAddress", _lab_address)


# --- Elastic IPs ---------------------------------------------------------------------------------------------


def _lab_address(params: dict[str, Any], **_: Any) -> None:
    """A NAT gateway's Elastic IP comes from the lab's public pool, so the security-group rules peerprobe
    writes for it (the EC2 host admits VPC1's NAT address) name the address the lab's NAT gateway uses."""
    names = [
        t["Value"]
        for spec in params.get("TagSpecifications", [])
        for t in spec.get("Tags", [])
        if t.get("Key") == "Name"
    ]
    found = next((m for n in names if (m := _NAT_EIP.match(n))), None)
    if found is not None and "Address" not in params:
        params["Address"] = nat_gateway_address(found.group(1))


# --- SSM public parameters -----------------------------------------------------------------------------------


def _public_parameter(request: Any, **_: Any) -> Any:
    name = str(json.loads(request.body or b"{}").get("Name", ""))
    if not name.startswith("/aws/service/"):
        return None  # the account's own parameters: moto answers
    parameter = {"Name": name, "Type": "String", "Value": LAB_IMAGE, "Version": 1, "DataType": "aws:ec2:image"}
    return _response(request.url, 200, {"Parameter": parameter})


# --- the EKS add-on API ----------------------------------------------------------------------------------------


def _eks_addons(request: Any, event_name: str, region: str) -> Any:
    operation = event_name.rsplit(".", 1)[-1]
    url = urlsplit(request.url)
    params = rest_params(url.path, url.query, request.body)
    if operation == "DescribeAddonVersions":
        return _response(request.url, 200, _versions(params))
    if operation in ("CreateAddon", "UpdateAddon"):
        return _response(request.url, 200, _record(region, params, operation))
    if operation == "DescribeAddon":
        found = _addons().get(f"{region}/{params.get('clusterName')}")
        if found is None or params.get("addonName") != "vpc-cni":
            message = f"No addon: {params.get('addonName')} found in cluster: {params.get('clusterName')}"
            return _response(request.url, 404, {"message": message}, code="ResourceNotFoundException")
        return _response(request.url, 200, {"addon": found})
    return None  # every other EKS operation: moto answers


def _versions(params: dict[str, Any]) -> dict[str, Any]:
    if params.get("addonName", "vpc-cni") != "vpc-cni":
        return {"addons": []}
    kubernetes = params.get("kubernetesVersion")
    with _lock:
        offered = sorted(_offered)
    versions = [
        {
            "addonVersion": f"v{v}-eksbuild.1",
            "architecture": ["amd64"],
            "requiresConfiguration": False,
            "compatibilities": [
                {"clusterVersion": kubernetes or "*", "platformVersions": ["*"], "defaultVersion": False}
            ],
        }
        for v in offered
    ]
    return {"addons": [{"addonName": "vpc-cni", "type": "networking", "addonVersions": versions}]}


def _record(region: str, params: dict[str, Any], operation: str) -> dict[str, Any]:
    """The lab's EKS applies an add-on at once: ACTIVE at the asked version."""
    key = f"{region}/{params['clusterName']}"
    with statedir.locked(ADDONS_STATE):
        addons = _addons()
        previous = addons.get(key, {})
        version = str(params.get("addonVersion") or previous.get("addonVersion", ""))
        addons[key] = {
            "addonName": "vpc-cni",
            "clusterName": params["clusterName"],
            "status": "ACTIVE",
            "addonVersion": version,
            "health": {"issues": []},
            "tags": params.get("tags", {}),
        }
        statedir.write_json(ADDONS_STATE, addons)
    log.info("lab.eks.addon", cluster=params["clusterName"], version=version, operation=operation)
    if operation == "UpdateAddon":
        return {"update": {"id": "lab-update", "status": "Successful", "type": "AddonUpdate", "errors": []}}
    return {"addon": addons[key]}


def _addons() -> dict[str, Any]:
    return dict(statedir.read_json(ADDONS_STATE) or {})


def rest_params(path: str, query: str, body: bytes | str | None) -> dict[str, Any]:
    """An EKS REST operation's parameters from its path (/clusters/<name>/addons/<addon>), query and body."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    params: dict[str, Any] = {k: v[0] for k, v in parse_qs(query).items()}
    if len(parts) >= 2 and parts[0] == "clusters":
        params["clusterName"] = parts[1]
    if len(parts) >= 4 and parts[2] == "addons":
        params["addonName"] = parts[3]
    if body:
        params.update(json.loads(body))
    return params
