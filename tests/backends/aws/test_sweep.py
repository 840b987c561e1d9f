"""find_tagged: everything peerprobe tagged, across EC2, EKS and ELB, filtered by environment."""

from __future__ import annotations

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.ports import Listener, Stamp


def test_find_tagged_sees_every_kind_and_filters_by_environment(cloud: AwsCloud) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    subnet = cloud.ensure_subnet(
        "s", vpc_id=vpc.id, cidr="172.16.0.0/24", availability_zone="cn-northwest-1a", public=True
    )
    cloud.ensure_internet_gateway("igw", vpc_id=vpc.id)
    cloud.ensure_nat_gateway("nat", subnet_id=subnet.id)
    cloud.ensure_cluster(
        "c1", role_arn="arn:aws-cn:iam::123456789012:role/r", subnet_ids=[subnet.id], service_cidr="10.100.0.0/16"
    )
    cloud.ensure_classic_load_balancer(
        "lb", subnet_ids=[subnet.id], internal=True, listeners=[Listener(protocol="TCP", port=80, instance_port=30080)]
    )
    cloud.ensure_target_group("tg", vpc_id=vpc.id, protocol="TCP", port=80, target_type="instance")
    other = AwsCloud(cloud.clients, stamp=Stamp(experiment="x", environment="lab:x:cn-northwest-1", run_id="r"))
    other.ensure_vpc("vpc1", cidr="10.0.0.0/16")

    mine = cloud.find_tagged("aws:workshop:cn-northwest-1")
    kinds = sorted(r.kind for r in mine)
    assert kinds == [
        "eks-cluster",
        "elastic-ip",
        "elb",
        "internet-gateway",
        "natgateway",
        "subnet",
        "target-group",
        "vpc",
    ]
    assert {r.tags["peerprobe:run"] for r in mine} == {"run-1"}
    everything = cloud.find_tagged()
    assert {r.environment for r in everything} == {"aws:workshop:cn-northwest-1", "lab:x:cn-northwest-1"}
    assert len(everything) == len(mine) + 1
