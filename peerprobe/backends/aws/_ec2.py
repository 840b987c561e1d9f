"""EC2 instances (the peer host): run once per name, terminate idempotently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import AwsBase, first, only
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.ports import Instance
from peerprobe.errors import ConflictError, NotFoundError

log = structlog.get_logger()

_LIVE_STATES = ["pending", "running", "stopping", "stopped"]
INSTANCE_WAIT_SECONDS = 10 * 60  # running (or terminated) within a minute or two


class InstanceOps(AwsBase):
    def ensure_instance(
        self,
        name: str,
        *,
        subnet_id: str,
        image_id: str,
        instance_type: str,
        security_group_ids: Sequence[str],
        private_ip: str | None = None,
        user_data: str = "",
        instance_profile_arn: str | None = None,
        public_ip: bool | None = None,
    ) -> Instance:
        """One live instance tagged `name` in `subnet_id`, waited until running. `public_ip` True or False asks
        for a public IPv4 address or none, whatever the subnet maps on launch; None leaves it to the subnet."""
        raw = self._find_instance(name)
        if raw is None:
            raw = self._run_instance(
                name,
                subnet_id=subnet_id,
                image_id=image_id,
                instance_type=instance_type,
                security_group_ids=security_group_ids,
                private_ip=private_ip,
                user_data=user_data,
                instance_profile_arn=instance_profile_arn,
                public_ip=public_ip,
            )
        elif raw["SubnetId"] != subnet_id:
            raise ConflictError(
                f"instance {raw['InstanceId']} ({name}): in {raw['SubnetId']}, wanted {subnet_id}",
                resource="instance",
                resource_id=raw["InstanceId"],
                state=raw["State"]["Name"],
            )
        instance_id = str(raw["InstanceId"])
        self.wait(
            self.ec2,
            "instance_running",
            kind="instance",
            resource_id=instance_id,
            max_seconds=INSTANCE_WAIT_SECONDS,
            InstanceIds=[instance_id],
        )
        return _with_public_ip(self.instance(instance_id), wanted=public_ip)

    def find_instance(self, name: str) -> str | None:
        """The id of the live (not terminated) instance tagged `name` in this environment, if any."""
        raw = self._find_instance(name)
        return str(raw["InstanceId"]) if raw is not None else None

    def _find_instance(self, name: str) -> dict[str, Any] | None:
        with aws_errors("instance", name=name):
            pages = self.ec2.describe_instances(Filters=self.owned(name, instance_state_name=_LIVE_STATES))
        found = [inst for reservation in pages["Reservations"] for inst in reservation["Instances"]]
        return first(found, kind="instance", name=name)

    def _run_instance(
        self,
        name: str,
        *,
        subnet_id: str,
        image_id: str,
        instance_type: str,
        security_group_ids: Sequence[str],
        private_ip: str | None,
        user_data: str,
        instance_profile_arn: str | None = None,
        public_ip: bool | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "UserData": user_data,
            "TagSpecifications": self.tag_specs("instance", name) + self.tag_specs("volume", name),
            **_placement(subnet_id, security_group_ids, private_ip=private_ip, public_ip=public_ip),
        }
        if instance_profile_arn:
            params["IamInstanceProfile"] = {"Arn": instance_profile_arn}
        # RunInstances' ClientToken is an idempotency token botocore fills in once per call and reuses across
        # its own retries, so a retried request after a timeout does not launch a second instance.
        with aws_errors("instance", name=name):
            raw: dict[str, Any] = self.ec2.run_instances(**params)["Instances"][0]
        log.info(
            "instance.launched",
            instance_id=raw["InstanceId"],
            subnet_id=subnet_id,
            private_ip=raw.get("PrivateIpAddress"),
            public_ip=public_ip,
        )
        return raw

    def instance(self, instance_id: str) -> Instance:
        """Read an instance back: state and addresses."""
        with aws_errors("instance", instance_id):
            pages = self.ec2.describe_instances(InstanceIds=[instance_id])
        found = [inst for reservation in pages["Reservations"] for inst in reservation["Instances"]]
        raw = only(found, kind="instance", resource_id=instance_id)
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
        return Instance(
            id=raw["InstanceId"],
            subnet_id=raw.get("SubnetId", ""),
            state=raw["State"]["Name"],
            private_ip=raw.get("PrivateIpAddress", ""),
            public_ip=raw.get("PublicIpAddress"),
            name=tags.get("Name", ""),
        )

    def terminate_instance(self, instance_id: str) -> None:
        """Terminate and wait until terminated (its ENI must be gone before its security group can go)."""
        try:
            with aws_errors("instance", instance_id):
                self.ec2.terminate_instances(InstanceIds=[instance_id])
        except NotFoundError:
            log.info("instance.already_absent", resource_id=instance_id)
            return
        self.wait(
            self.ec2,
            "instance_terminated",
            kind="instance",
            resource_id=instance_id,
            max_seconds=INSTANCE_WAIT_SECONDS,
            InstanceIds=[instance_id],
        )
        log.info("instance.deleted", resource_id=instance_id)


def _placement(
    subnet_id: str, security_group_ids: Sequence[str], *, private_ip: str | None, public_ip: bool | None
) -> dict[str, Any]:
    """RunInstances' subnet, groups and address. Whether the instance gets a public IPv4 address can only be
    said on its network interface, and then subnet, groups and address must be said there too."""
    if public_ip is None:
        return {"SubnetId": subnet_id, "SecurityGroupIds": list(security_group_ids)} | (
            {"PrivateIpAddress": private_ip} if private_ip else {}
        )
    interface: dict[str, Any] = {
        "DeviceIndex": 0,
        "SubnetId": subnet_id,
        "Groups": list(security_group_ids),
        "AssociatePublicIpAddress": public_ip,
    }
    if private_ip:
        interface["PrivateIpAddress"] = private_ip
    return {"NetworkInterfaces": [interface]}


def _with_public_ip(instance: Instance, *, wanted: bool | None) -> Instance:
    """An instance found by its name must be what was asked for: with a public IPv4 address, or without."""
    if wanted is None or (instance.public_ip is not None) == wanted:
        return instance
    has = f"has public IP {instance.public_ip}" if instance.public_ip else "has no public IP"
    raise ConflictError(
        f"instance {instance.id} ({instance.name}): {has}, wanted {'one' if wanted else 'none'}; remove it "
        "(cleanup) and create it again",
        resource="instance",
        resource_id=instance.id,
        state=instance.state,
    )
