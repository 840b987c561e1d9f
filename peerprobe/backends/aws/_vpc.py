"""VPCs, subnets, route tables and routes, internet gateways, NAT gateways and their Elastic IPs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import absent_ok, first, only, tag_dict
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._in_use import InUseOps
from peerprobe.backends.ports import (
    TAG_ENVIRONMENT,
    InternetGateway,
    NatGateway,
    Route,
    RouteTable,
    Subnet,
    Vpc,
)
from peerprobe.errors import ConfigError, ConflictError, NotFoundError

log = structlog.get_logger()

# Subnet role tags the Kubernetes cloud provider and the AWS Load Balancer Controller use to pick subnets
# for internet-facing and internal load balancers (https://docs.aws.amazon.com/eks/latest/userguide/network-load-balancing.html).
PUBLIC_ROLE_TAG = "kubernetes.io/role/elb"
PRIVATE_ROLE_TAG = "kubernetes.io/role/internal-elb"
_ROUTE_TARGETS = {
    "igw-": "GatewayId",
    "nat-": "NatGatewayId",
    "pcx-": "VpcPeeringConnectionId",
    "tgw-": "TransitGatewayId",
}
_LIVE_NAT_STATES = ["pending", "available"]
# Zones EKS refuses for a cluster's subnets (CreateCluster: UnsupportedAvailabilityZoneException, "subnet resides
# in a disallowed Availability Zone", https://repost.aws/knowledge-center/eks-cluster-creation-errors), by zone
# id; the list eksctl avoids (eksctl-io/eksctl pkg/az/az.go, zoneIDsToAvoid; cnn1-az4: eksctl-io/eksctl#3916).
EKS_REFUSED_ZONE_IDS = frozenset({"use1-az3", "usw1-az2", "cac1-az3", "cnn1-az4"})
NAT_WAIT_SECONDS = 10 * 60  # a NAT gateway is available (or deleted) in one to a few minutes
# CreateNatGateway seconds after CreateSubnet (or AllocateAddress) can answer that the subnet (or the address)
# does not exist (openshift/hypershift#711, fixed by waiting in hypershift#1034; gardener-extension-provider-aws
# #1947): nothing was created, so it is asked again (ID_PROPAGATION_SECONDS).
NAT_PARTS_NOT_YET_KNOWN = frozenset({"InvalidSubnetID.NotFound", "InvalidAllocationID.NotFound"})


class VpcOps(InUseOps):
    def availability_zones(self) -> tuple[str, ...]:
        """The region's available zone names, sorted (subnets are spread over the first few), without the
        zones EKS refuses. Names map to different zones in every account; the zone ids do not, so the
        refused zones are known by id (EKS_REFUSED_ZONE_IDS)."""
        with aws_errors("availability zones", self.clients.region):
            zones = self.ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])[
                "AvailabilityZones"
            ]
        usable = [
            zone
            for zone in zones
            # Local Zones and Wavelength Zones cannot hold an EKS cluster's subnets (EKS network requirements).
            if zone.get("ZoneType", "availability-zone") == "availability-zone"
            and zone.get("ZoneId") not in EKS_REFUSED_ZONE_IDS
        ]
        return tuple(sorted(str(zone["ZoneName"]) for zone in usable))

    def ensure_vpc(self, name: str, *, cidr: str) -> Vpc:
        """The VPC tagged `name` in this environment, created with `cidr` if missing, with DNS support and DNS
        hostnames on (set again on a VPC found: a crash between CreateVpc and ModifyVpcAttribute left them off)."""
        with aws_errors("vpc", name=name):
            found = first(self.ec2.describe_vpcs(Filters=self.owned(name))["Vpcs"], kind="vpc", name=name)
        if found is not None:
            vpc = _checked_vpc(found, name=name, cidr=cidr)
            self._enable_dns(vpc)
            return vpc
        with aws_errors("vpc", name=name):
            raw = self.ec2.create_vpc(CidrBlock=cidr, TagSpecifications=self.tag_specs("vpc", name))["Vpc"]
        vpc = Vpc(id=raw["VpcId"], cidr=raw["CidrBlock"], name=name)
        log.info("vpc.created", vpc_id=vpc.id, cidr=cidr, name=name)
        self._enable_dns(vpc)
        return vpc

    def _enable_dns(self, vpc: Vpc) -> None:
        """DNS support and DNS hostnames on, each set only when it is off. EKS requires both
        (https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html); the API reads and takes one
        attribute per call."""
        for attribute, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
            with aws_errors("vpc", vpc.id, vpc.name):
                if self.ec2.describe_vpc_attribute(VpcId=vpc.id, Attribute=attribute)[key]["Value"]:
                    continue
                self.ec2.modify_vpc_attribute(VpcId=vpc.id, **{key: {"Value": True}})
            log.info("vpc.dns_enabled", vpc_id=vpc.id, attribute=attribute)

    def existing_vpcs(self, vpc_ids: Sequence[str]) -> set[str]:
        """Which of `vpc_ids` the account still has."""
        with aws_errors("vpc", ", ".join(vpc_ids)):
            found = self.ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": list(vpc_ids)}])["Vpcs"]
        return {str(v["VpcId"]) for v in found}

    def delete_vpc(self, vpc_id: str) -> None:
        """Delete the VPC, waiting (bounded) while interfaces or groups left by EKS or a load balancer are
        still being released; giving up names them."""
        self.delete_when_free(
            "vpc",
            vpc_id,
            lambda: self.ec2.delete_vpc(VpcId=vpc_id),
            holders=lambda: [
                *self.interfaces_using("vpc-id", vpc_id),
                *self.groups_in(vpc_id),
                *self.subnets_in(vpc_id),
            ],
        )

    def ensure_subnet(self, name: str, *, vpc_id: str, cidr: str, availability_zone: str, public: bool) -> Subnet:
        """The subnet tagged `name` in `vpc_id`; public subnets map public IPs on launch."""
        with aws_errors("subnet", name=name):
            found = first(
                self.ec2.describe_subnets(Filters=self.owned(name, vpc_id=vpc_id))["Subnets"],
                kind="subnet",
                name=name,
            )
        if found is None:
            found = self._create_subnet(name, vpc_id=vpc_id, cidr=cidr, zone=availability_zone, public=public)
        if found["CidrBlock"] != cidr or found["AvailabilityZone"] != availability_zone:
            raise ConflictError(
                f"subnet {found['SubnetId']} ({name}): is {found['CidrBlock']} "
                f"in {found['AvailabilityZone']}, wanted {cidr} in {availability_zone}",
                resource="subnet",
                resource_id=found["SubnetId"],
                state="mismatch",
            )
        if public and not found.get("MapPublicIpOnLaunch"):
            with aws_errors("subnet", found["SubnetId"], name):
                self.ec2.modify_subnet_attribute(SubnetId=found["SubnetId"], MapPublicIpOnLaunch={"Value": True})
        return _subnet(found, public=public, name=name)

    def _create_subnet(self, name: str, *, vpc_id: str, cidr: str, zone: str, public: bool) -> dict[str, Any]:
        role = {PUBLIC_ROLE_TAG if public else PRIVATE_ROLE_TAG: "1"}
        with aws_errors("subnet", name=name):
            raw: dict[str, Any] = self.ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=cidr,
                AvailabilityZone=zone,
                TagSpecifications=self.tag_specs("subnet", name, role),
            )["Subnet"]
        log.info("subnet.created", subnet_id=raw["SubnetId"], vpc_id=vpc_id, cidr=cidr, az=zone, public=public)
        return raw

    def subnets(self, subnet_ids: Sequence[str]) -> tuple[Subnet, ...]:
        """The subnets of `subnet_ids` as the account has them now."""
        with aws_errors("subnet", ", ".join(subnet_ids)):
            found = self.ec2.describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
        return tuple(_subnet(raw, public=bool(raw.get("MapPublicIpOnLaunch")), name=_name(raw)) for raw in found)

    def delete_subnet(self, subnet_id: str) -> None:
        """Delete the subnet, waiting (bounded) while interfaces in it are still being released."""
        self.delete_when_free(
            "subnet",
            subnet_id,
            lambda: self.ec2.delete_subnet(SubnetId=subnet_id),
            holders=lambda: self.interfaces_using("subnet-id", subnet_id),
        )

    def ensure_route_table(self, name: str, *, vpc_id: str, subnet_ids: Sequence[str]) -> RouteTable:
        """The route table tagged `name`, associated with every subnet in `subnet_ids`."""
        raw = self._find_route_table(name, vpc_id=vpc_id)
        if raw is None:
            with aws_errors("route table", name=name):
                raw = self.ec2.create_route_table(VpcId=vpc_id, TagSpecifications=self.tag_specs("route-table", name))[
                    "RouteTable"
                ]
            log.info("route_table.created", route_table_id=raw["RouteTableId"], vpc_id=vpc_id, name=name)
        table_id = str(raw["RouteTableId"])
        current = self._subnet_associations(subnet_ids)
        for subnet_id in subnet_ids:
            self._associate(table_id, subnet_id=subnet_id, current=current.get(subnet_id))
        return self.route_table(table_id)

    def _find_route_table(self, name: str, *, vpc_id: str) -> dict[str, Any] | None:
        with aws_errors("route table", name=name):
            tables = self.ec2.describe_route_tables(Filters=self.owned(name, vpc_id=vpc_id))["RouteTables"]
        return first(tables, kind="route_table", name=name)

    def route_table(self, route_table_id: str) -> RouteTable:
        """Read one route table back: its subnet associations and routes."""
        with aws_errors("route table", route_table_id):
            found = self.ec2.describe_route_tables(RouteTableIds=[route_table_id])["RouteTables"]
        return _route_table(only(found, kind="route table", resource_id=route_table_id))

    def _associate(self, route_table_id: str, *, subnet_id: str, current: tuple[str, str] | None) -> None:
        """Associate the subnet, whose explicit association now is `current` (association id, table id)."""
        with aws_errors("route table", route_table_id, f"subnet {subnet_id}"):
            if current is None:
                self.ec2.associate_route_table(RouteTableId=route_table_id, SubnetId=subnet_id)
            elif current[1] != route_table_id:
                # A subnet has one explicit association; moving it is a replace, not a second associate.
                self.ec2.replace_route_table_association(AssociationId=current[0], RouteTableId=route_table_id)
            else:
                return
        log.info("route_table.associated", route_table_id=route_table_id, subnet_id=subnet_id)

    def _subnet_associations(self, subnet_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Each subnet's explicit association (association id, route table id), read in one call."""
        if not subnet_ids:
            return {}
        wanted = [{"Name": "association.subnet-id", "Values": list(subnet_ids)}]
        with aws_errors("subnet", ",".join(subnet_ids)):
            tables = self.ec2.describe_route_tables(Filters=wanted)["RouteTables"]
        return {
            str(assoc["SubnetId"]): (str(assoc["RouteTableAssociationId"]), str(table["RouteTableId"]))
            for table in tables
            for assoc in table.get("Associations", [])
            if assoc.get("SubnetId") in subnet_ids
        }

    def delete_route_table(self, route_table_id: str) -> None:
        """Disassociate its subnets, then delete it; an absent table is fine."""
        with absent_ok("route_table", route_table_id):
            subnet_ids = self.route_table(route_table_id).subnet_ids
            for association, table_id in self._subnet_associations(subnet_ids).values():
                if table_id == route_table_id:
                    self.ec2.disassociate_route_table(AssociationId=association)
            self.ec2.delete_route_table(RouteTableId=route_table_id)

    def ensure_route(self, route_table_id: str, *, destination_cidr: str, target_id: str) -> Route:
        """A route `destination_cidr` -> `target_id` (igw-, nat-, pcx- or tgw-); a route elsewhere is replaced."""
        params = {
            "RouteTableId": route_table_id,
            "DestinationCidrBlock": destination_cidr,
            _route_target_key(target_id): target_id,
        }
        existing = _find_route(self.route_table(route_table_id), destination_cidr)
        if existing is not None and existing.target_id == target_id:
            return existing
        with aws_errors("route", route_table_id, destination_cidr):
            if existing is None:
                self.ec2.create_route(**params)
            else:
                self.ec2.replace_route(**params)
        log.info("route.ensured", route_table_id=route_table_id, destination=destination_cidr, target=target_id)
        return Route(destination_cidr=destination_cidr, target_id=target_id)

    def delete_route(self, route_table_id: str, *, destination_cidr: str) -> None:
        with absent_ok("route", f"{route_table_id} {destination_cidr}"):
            self.ec2.delete_route(RouteTableId=route_table_id, DestinationCidrBlock=destination_cidr)

    def ensure_internet_gateway(self, name: str, *, vpc_id: str) -> InternetGateway:
        """The internet gateway tagged `name`, attached to `vpc_id`."""
        with aws_errors("internet gateway", name=name):
            raw = first(
                self.ec2.describe_internet_gateways(Filters=self.owned(name))["InternetGateways"],
                kind="internet_gateway",
                name=name,
            )
            if raw is None:
                raw = self.ec2.create_internet_gateway(TagSpecifications=self.tag_specs("internet-gateway", name))[
                    "InternetGateway"
                ]
                log.info("internet_gateway.created", gateway_id=raw["InternetGatewayId"], name=name)
        self._attach(raw, vpc_id=vpc_id, name=name)
        return InternetGateway(id=raw["InternetGatewayId"], vpc_id=vpc_id)

    def _attach(self, raw: dict[str, Any], *, vpc_id: str, name: str) -> None:
        gateway_id = raw["InternetGatewayId"]
        attached = [a["VpcId"] for a in raw.get("Attachments", [])]
        if vpc_id in attached:
            return
        if attached:
            raise ConflictError(
                f"internet gateway {gateway_id} ({name}): attached to {attached[0]}, wanted {vpc_id}",
                resource="internet gateway",
                resource_id=gateway_id,
                state="attached",
            )
        with aws_errors("internet gateway", gateway_id, name):
            self.ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id)
        log.info("internet_gateway.attached", gateway_id=gateway_id, vpc_id=vpc_id)

    def delete_internet_gateway(self, gateway_id: str) -> None:
        """Detach it from its VPC, then delete it; an absent gateway is fine. Detaching answers
        DependencyViolation ("has some mapped public address(es)") while a public address in the VPC is still
        being released, so it waits for that (bounded) and, giving up, names the VPC's interfaces."""
        vpcs: list[str] = []

        def detach_and_delete() -> None:
            found = self.ec2.describe_internet_gateways(InternetGatewayIds=[gateway_id])["InternetGateways"]
            raw = only(found, kind="internet gateway", resource_id=gateway_id)
            for attachment in raw.get("Attachments", []):
                vpcs.append(str(attachment["VpcId"]))
                self.ec2.detach_internet_gateway(InternetGatewayId=gateway_id, VpcId=attachment["VpcId"])
            self.ec2.delete_internet_gateway(InternetGatewayId=gateway_id)

        def holders() -> list[str]:
            return [eni for vpc in dict.fromkeys(vpcs) for eni in self.interfaces_using("vpc-id", vpc)]

        self.delete_when_free("internet gateway", gateway_id, detach_and_delete, holders=holders)

    def ensure_nat_gateway(self, name: str, *, subnet_id: str) -> NatGateway:
        """A public NAT gateway tagged `name` in `subnet_id` with its own Elastic IP, once available."""
        with aws_errors("nat gateway", name=name):
            raw = first(
                self.ec2.describe_nat_gateways(Filter=self.owned(name, subnet_id=subnet_id, state=_LIVE_NAT_STATES))[
                    "NatGateways"
                ],
                kind="nat_gateway",
                name=name,
            )
        if raw is None:
            raw = self._create_nat_gateway(name, subnet_id=subnet_id)
        nat_id = str(raw["NatGatewayId"])
        self.wait(
            self.ec2,
            "nat_gateway_available",
            kind="nat gateway",
            resource_id=nat_id,
            max_seconds=NAT_WAIT_SECONDS,
            NatGatewayIds=[nat_id],
        )
        with aws_errors("nat gateway", nat_id, name):
            raw = self.ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]
        return _nat_gateway(raw)

    def _create_nat_gateway(self, name: str, *, subnet_id: str) -> dict[str, Any]:
        allocation_id = self._ensure_address(f"{name}-eip")

        def create() -> dict[str, Any]:
            with aws_errors("nat gateway", name=name):
                return dict(
                    self.ec2.create_nat_gateway(
                        SubnetId=subnet_id,
                        AllocationId=allocation_id,
                        TagSpecifications=self.tag_specs("natgateway", name),
                    )["NatGateway"]
                )

        raw = self.while_unknown(create, codes=NAT_PARTS_NOT_YET_KNOWN, what=f"nat gateway {name}")
        log.info(
            "nat_gateway.created",
            nat_gateway_id=raw["NatGatewayId"],
            subnet_id=subnet_id,
            allocation_id=allocation_id,
        )
        return raw

    def _ensure_address(self, name: str) -> str:
        with aws_errors("elastic ip", name=name):
            found = first(
                self.ec2.describe_addresses(Filters=self.owned(name))["Addresses"],
                kind="elastic_ip",
                name=name,
            )
            if found is None:
                found = self.ec2.allocate_address(Domain="vpc", TagSpecifications=self.tag_specs("elastic-ip", name))
                log.info("elastic_ip.allocated", allocation_id=found["AllocationId"], public_ip=found["PublicIp"])
        return str(found["AllocationId"])

    def delete_nat_gateway(self, nat_gateway_id: str) -> None:
        """Delete it, wait until deleted, then release the Elastic IPs peerprobe allocated for it."""
        raw = self._live_nat_gateway(nat_gateway_id)
        if raw is None:
            log.info("nat_gateway.already_absent", resource_id=nat_gateway_id)
            return
        with absent_ok("nat_gateway", nat_gateway_id):
            self.ec2.delete_nat_gateway(NatGatewayId=nat_gateway_id)
        # Its Elastic IP stays associated until the gateway is fully deleted, so release only after the wait.
        self.wait(
            self.ec2,
            "nat_gateway_deleted",
            kind="nat gateway",
            resource_id=nat_gateway_id,
            max_seconds=NAT_WAIT_SECONDS,
            NatGatewayIds=[nat_gateway_id],
        )
        for address in raw.get("NatGatewayAddresses", []):
            if address.get("AllocationId") and self._owned_address(address["AllocationId"]):
                self.release_address(address["AllocationId"])

    def _live_nat_gateway(self, nat_gateway_id: str) -> dict[str, Any] | None:
        try:
            with aws_errors("nat gateway", nat_gateway_id):
                found = self.ec2.describe_nat_gateways(NatGatewayIds=[nat_gateway_id])["NatGateways"]
        except NotFoundError:
            return None
        # Deleted NAT gateways stay visible for about an hour in state "deleted".
        live = [raw for raw in found if raw.get("State") not in ("deleting", "deleted")]
        return live[0] if live else None

    def _owned_address(self, allocation_id: str) -> bool:
        with aws_errors("elastic ip", allocation_id):
            found = self.ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
        return bool(found) and tag_dict(found[0]).get(TAG_ENVIRONMENT) == self.stamp.environment

    def release_address(self, allocation_id: str) -> None:
        with absent_ok("elastic_ip", allocation_id):
            self.ec2.release_address(AllocationId=allocation_id)


def _checked_vpc(raw: dict[str, Any], *, name: str, cidr: str) -> Vpc:
    vpc = Vpc(id=raw["VpcId"], cidr=raw["CidrBlock"], name=name)
    if vpc.cidr != cidr:
        raise ConflictError(
            f"vpc {vpc.id} ({name}): has CIDR {vpc.cidr}, wanted {cidr}",
            resource="vpc",
            resource_id=vpc.id,
            state="cidr-mismatch",
        )
    return vpc


def _subnet(raw: dict[str, Any], *, public: bool, name: str) -> Subnet:
    return Subnet(
        id=raw["SubnetId"],
        vpc_id=raw["VpcId"],
        cidr=raw["CidrBlock"],
        availability_zone=raw["AvailabilityZone"],
        public=public,
        map_public_ip=public or bool(raw.get("MapPublicIpOnLaunch")),
        name=name,
    )


def _route_table(raw: dict[str, Any]) -> RouteTable:
    subnets = tuple(a["SubnetId"] for a in raw.get("Associations", []) if a.get("SubnetId"))
    routes = tuple(
        Route(destination_cidr=r["DestinationCidrBlock"], target_id=_route_target(r), state=r.get("State", ""))
        for r in raw.get("Routes", [])
        if "DestinationCidrBlock" in r
    )
    return RouteTable(
        id=raw["RouteTableId"],
        vpc_id=raw["VpcId"],
        subnet_ids=subnets,
        routes=routes,
        name=tag_dict(raw).get("Name", ""),
    )


def _route_target(raw: dict[str, Any]) -> str:
    for key in (
        "GatewayId",
        "NatGatewayId",
        "VpcPeeringConnectionId",
        "TransitGatewayId",
        "InstanceId",
        "NetworkInterfaceId",
    ):
        if raw.get(key):
            return str(raw[key])
    return ""


def _route_target_key(target_id: str) -> str:
    for prefix, key in _ROUTE_TARGETS.items():
        if target_id.startswith(prefix):
            return key
    raise ConfigError(f"route target {target_id!r}: expected an igw-, nat-, pcx- or tgw- id")


def _find_route(table: RouteTable, destination_cidr: str) -> Route | None:
    return next((r for r in table.routes if r.destination_cidr == destination_cidr), None)


def _nat_gateway(raw: dict[str, Any]) -> NatGateway:
    address = (raw.get("NatGatewayAddresses") or [{}])[0]
    return NatGateway(
        id=raw["NatGatewayId"],
        subnet_id=raw["SubnetId"],
        state=raw["State"],
        allocation_id=address.get("AllocationId", ""),
        public_ip=address.get("PublicIp", ""),
        private_ip=address.get("PrivateIp", ""),
    )


def _name(raw: dict[str, Any]) -> str:
    return tag_dict(raw).get("Name", "")
