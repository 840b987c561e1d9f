"""EC2 instances: one live instance per name, terminate twice."""

from __future__ import annotations

from typing import Any

from peerprobe.backends.aws import AwsCloud


def test_instance_twice_is_one_running_instance(cloud: AwsCloud, ec2: Any) -> None:
    vpc = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    subnet = cloud.ensure_subnet(
        "vpc2-public-a", vpc_id=vpc.id, cidr="192.168.0.0/24", availability_zone="cn-northwest-1a", public=True
    )
    group = cloud.ensure_security_group("vpc2-host", vpc_id=vpc.id, description="peer host")
    image = "ami-0123456789abcdef0"  # moto launches any AMI id; the lab has no images to choose from
    for _ in range(2):
        host = cloud.ensure_instance(
            "vpc2-host",
            subnet_id=subnet.id,
            image_id=image,
            instance_type="t3.micro",
            security_group_ids=[group.id],
            private_ip="192.168.0.50",
        )
    assert (host.state, host.private_ip, host.name) == ("running", "192.168.0.50", "vpc2-host")
    filters = [{"Name": "tag:Name", "Values": ["vpc2-host"]}]
    reservations = ec2.describe_instances(Filters=filters)["Reservations"]
    assert [i["InstanceId"] for r in reservations for i in r["Instances"]] == [host.id]

    cloud.terminate_instance(host.id)
    cloud.terminate_instance(host.id)
    assert cloud.instance(host.id).state == "terminated"
