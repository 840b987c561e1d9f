"""A stateful fake of the EKS add-on API, which moto 5.2.5 does not serve: DescribeAddonVersions, CreateAddon,
UpdateAddon and DescribeAddon answered from memory by a `before-send` handler (registered first) on every EKS
client; every other EKS operation goes on to moto, whose clusters the fake consults."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from moto.core import DEFAULT_ACCOUNT_ID
from moto.eks.models import eks_backends

from peerprobe.backends.aws.hooks import json_response
from peerprobe.backends.lab.standins import rest_params
from tests.backends.aws._fakes import on_every_session

# addon version -> the Kubernetes versions it supports (1.19 is moto's default cluster version).
CATALOGUE: dict[str, tuple[str, ...]] = {
    "v1.19.6-eksbuild.1": ("1.19", "1.31"),
    "v1.20.3-eksbuild.12": ("1.19", "1.31", "1.33"),
    "v1.20.4-eksbuild.1": ("1.19", "1.31", "1.33"),
    "v1.20.4-eksbuild.2": ("1.19", "1.31", "1.33"),
    "v1.20.4-eksbuild.10": ("1.19", "1.31", "1.33"),  # 10 > 2: builds compare as numbers, not text
    "v1.20.4-eksbuild.11": ("1.33",),  # not offered for older clusters
    "v1.20.40-eksbuild.9": ("1.19", "1.31", "1.33"),  # 1.20.40 is not 1.20.4
    "v1.21.0-eksbuild.1": ("1.31", "1.33"),
}
_STATUS_CODES = {"ResourceNotFoundException": 404, "InvalidParameterException": 400, "ResourceInUseException": 409}


class AddonError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Addon:
    """One add-on as EKS keeps it; `customized` stands for aws-node fields changed from EKS's defaults (the
    SNAT env peerprobe patches), which an update with OVERWRITE resets."""

    cluster: str
    version: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    issues: list[dict[str, str]] = field(default_factory=list)
    customized: bool = False
    settles_in: int = 0  # DescribeAddon answers left before CREATING/UPDATING settles
    pending: str | None = None  # an accepted update EKS does not show yet
    shows_in: int = 0  # DescribeAddon answers left before the pending update shows as UPDATING
    created_at: float = field(default_factory=time.time)


@dataclass
class FakeAddons:
    catalogue: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(CATALOGUE))
    settle_after: int = 1  # DescribeAddon answers a create or update stays CREATING/UPDATING for
    update_lag: int = 0  # DescribeAddon answers an accepted update still shows ACTIVE at the old version for
    addons: dict[tuple[str, str], Addon] = field(default_factory=dict)  # (region, cluster) -> the vpc-cni add-on
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (operation, parameters)

    def __call__(self, request: Any, event_name: str, **kwargs: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        handler = self._handlers().get(operation)
        if handler is None:
            return None  # not an add-on operation: moto answers
        url = urlsplit(request.url)
        region = url.hostname.split(".")[1] if url.hostname else ""
        params = rest_params(url.path, url.query, request.body)
        self._forget_deleted_clusters()
        self.calls.append((operation, params))
        try:
            return json_response(request.url, 200, handler(region, params))
        except AddonError as error:
            return json_response(request.url, _STATUS_CODES[error.code], {"message": str(error)}, code=error.code)

    def _handlers(self) -> dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]]:
        return {
            "DescribeAddonVersions": self._versions,
            "DescribeAddon": self._describe,
            "CreateAddon": self._create,
            "UpdateAddon": self._update,
        }

    def install(self, monkeypatch: Any) -> None:
        """Every session ClientFactory builds sends its EKS add-on calls here first."""
        on_every_session(monkeypatch, lambda session: session.events.register_first("before-send.eks", self))

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]

    # --- the operations -----------------------------------------------------------------------------------

    def _versions(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("addonName", "vpc-cni") != "vpc-cni":
            return {"addons": []}
        kubernetes = params.get("kubernetesVersion")
        offered = [_version_info(v, ks) for v, ks in self.catalogue.items() if kubernetes is None or kubernetes in ks]
        return {
            "addons": [
                {
                    "addonName": "vpc-cni",
                    "type": "networking",
                    "owner": "aws",
                    "publisher": "eks",
                    "addonVersions": offered,
                }
            ]
        }

    def _describe(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        addon = self._addon(region, params)
        if addon.pending is not None and addon.shows_in > 0:
            addon.shows_in -= 1
        elif addon.pending is not None:
            addon.version, addon.pending, addon.status = addon.pending, None, "UPDATING"
        elif addon.status in ("CREATING", "UPDATING"):
            addon.settles_in -= 1
            if addon.settles_in < 0:
                addon.status = "ACTIVE"
        return {"addon": _view(addon)}

    def _create(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        cluster = _cluster(region, params["clusterName"])
        if (region, cluster.name) in self.addons:
            raise AddonError("ResourceInUseException", "Addon already exists.")
        version = self._compatible(params.get("addonVersion", ""), cluster.version)
        addon = Addon(cluster.name, version, "CREATING", dict(params.get("tags") or {}), settles_in=self.settle_after)
        if params.get("resolveConflicts") != "OVERWRITE":
            # Every new cluster runs the self-managed aws-node; without OVERWRITE its fields conflict.
            addon.status, addon.issues = "CREATE_FAILED", [_conflict("aws-node")]
        self.addons[(region, cluster.name)] = addon
        return {"addon": _view(addon)}

    def _update(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        addon = self._addon(region, params)
        if addon.status in ("CREATING", "UPDATING", "DELETING"):
            raise AddonError("ResourceInUseException", f"Addon vpc-cni is {addon.status}.")
        kubernetes = _cluster(region, addon.cluster).version
        version = self._compatible(params.get("addonVersion", addon.version), kubernetes)
        mode = params.get("resolveConflicts", "NONE")
        addon.settles_in, addon.issues = self.settle_after, []
        if self.update_lag:  # accepted, but DescribeAddon shows the old version, ACTIVE, for a while
            addon.pending, addon.shows_in = version, self.update_lag
        else:
            addon.version, addon.status = version, "UPDATING"
        if mode == "OVERWRITE":
            addon.customized = False  # EKS's defaults back in place of the changed fields
        elif mode == "NONE" and addon.customized:
            addon.status, addon.pending, addon.issues = "UPDATE_FAILED", None, [_conflict("aws-node env")]
        return {
            "update": {
                "id": f"update-{len(self.calls)}",
                "status": "InProgress",
                "type": "AddonUpdate",
                "params": [{"type": "AddonVersion", "value": version}, {"type": "ResolveConflicts", "value": mode}],
                "errors": [],
            }
        }

    # --- helpers ------------------------------------------------------------------------------------------

    def _addon(self, region: str, params: dict[str, Any]) -> Addon:
        cluster = _cluster(region, params["clusterName"]).name
        addon = self.addons.get((region, cluster))
        if addon is None or params.get("addonName") != "vpc-cni":
            name = params.get("addonName")
            raise AddonError("ResourceNotFoundException", f"No addon: {name} found in cluster: {cluster}")
        return addon

    def _compatible(self, version: str, kubernetes: str) -> str:
        if kubernetes not in self.catalogue.get(version, ()):
            raise AddonError("InvalidParameterException", f"Addon version {version} is not supported for {kubernetes}")
        return version

    def _forget_deleted_clusters(self) -> None:
        """Add-ons go with their cluster."""
        self.addons = {(r, c): a for (r, c), a in self.addons.items() if _cluster_exists(r, c)}


def _cluster(region: str, name: str) -> Any:
    found = eks_backends[DEFAULT_ACCOUNT_ID][region].clusters.get(name)
    if found is None:
        raise AddonError("ResourceNotFoundException", f"No cluster found for name: {name}.")
    return found


def _cluster_exists(region: str, name: str) -> bool:
    return name in eks_backends[DEFAULT_ACCOUNT_ID][region].clusters


def _version_info(version: str, kubernetes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "addonVersion": version,
        "architecture": ["amd64", "arm64"],
        "requiresConfiguration": False,
        "compatibilities": [
            {"clusterVersion": k, "platformVersions": ["*"], "defaultVersion": False} for k in kubernetes
        ],
    }


def _conflict(what: str) -> dict[str, str]:
    return {"code": "ConfigurationConflict", "message": f"Conflicts found when trying to apply: {what}"}


def _view(addon: Addon) -> dict[str, Any]:
    return {
        "addonName": "vpc-cni",
        "clusterName": addon.cluster,
        "status": addon.status,
        "addonVersion": addon.version,
        "health": {"issues": addon.issues},
        "tags": addon.tags,
        "createdAt": addon.created_at,
        "modifiedAt": time.time(),
    }
