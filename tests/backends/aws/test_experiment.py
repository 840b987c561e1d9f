"""AwsExperiment's cloud side against moto: networks created or adopted, subnets tagged, the missing public
subnet refused before anything exists, IAM roles in the aws-cn partition, the EKS cluster and managed node
group from resources/private-cluster.yaml, the EC2 host, peering, probes, and cleanup in dependency order.
The kubernetes side is a client-level fake here (FakeKube); cluster/ tests the real client against a fake
API server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto import mock_aws

from peerprobe import config as config_module
from peerprobe.backends.aws._base import Waits
from peerprobe.backends.aws._state import load
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment, cluster_spec, preflight, role_name
from peerprobe.backends.opened import peer_rules
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import ConfigError
from peerprobe.topology import Node
from tests.backends.aws._fakes import FakeKube, Recorder, service
from tests.backends.aws.conftest import REGION


def kube_for(config: config_module.ExperimentConfig) -> dict[str, FakeKube]:
    nodes = {
        "vpc1": [
            Node(name=f"ip-172-16-{96 + i}-20.{REGION}.compute.internal", ip=f"172.16.{96 + i}.20") for i in range(3)
        ],
        "vpc2": [
            Node(name=f"ip-192-168-{96 + i}-20.{REGION}.compute.internal", ip=f"192.168.{96 + i}.20") for i in range(2)
        ],
    }
    return {key: FakeKube(name=getattr(config.clusters, key).name, nodes_=nodes[key]) for key in ("vpc1", "vpc2")}


def make(
    clients: ClientFactory,
    config: config_module.ExperimentConfig | None = None,
    kubes: dict[str, FakeKube] | None = None,
) -> AwsExperiment:
    config = config or config_module.load()
    kubes = kubes or kube_for(config)
    ref = EnvironmentRef(backend="aws", config=config, run_id="run-1")
    experiment = AwsExperiment(
        ref, clients=clients, waits=Waits(delay=0, max_attempts=3), kube=kubes.__getitem__, poll_seconds=0
    )
    experiment.load_balancer_delete_seconds = 0
    experiment.cluster_group_wait_seconds = 0
    return experiment


def tags(raw: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("Tags", [])}


def test_create_network_lays_out_and_tags_subnets_idempotently(aws: ClientFactory) -> None:
    experiment = make(aws)
    first = experiment.create_network("vpc1")
    second = experiment.create_network("vpc1")
    assert first.resources["vpc"] == second.resources["vpc"]
    ec2 = aws.client("ec2")
    assert len(ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["vpc1"]}])["Vpcs"]) == 1
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [first.resources["vpc"]]}])["Subnets"]
    assert len(subnets) == 6 and len({s["AvailabilityZone"] for s in subnets}) == 3
    cluster_tag = "kubernetes.io/cluster/gcr-eksworkshop-private"
    for raw in subnets:
        found = tags(raw)
        assert found[cluster_tag] == "shared"
        role = (
            "kubernetes.io/role/elb"
            if raw["SubnetId"] in first.resources["public_subnets"]
            else ("kubernetes.io/role/internal-elb")
        )
        assert found[role] == "1"
    assert first.resources["nat_gateway"].startswith("nat-")


def test_a_new_networks_six_subnets_get_the_cluster_tag_in_one_call(aws: ClientFactory, recorder: Recorder) -> None:
    make(aws).create_network("vpc1")
    assert recorder.calls.count("ec2:CreateTags") == 1  # the role tags came with CreateSubnet


def _existing_vpc(ec2: Any, *, public: bool) -> tuple[str, str, str | None]:
    vpc = ec2.create_vpc(CidrBlock="172.16.0.0/16")["Vpc"]["VpcId"]
    private = ec2.create_subnet(
        VpcId=vpc,
        CidrBlock="172.16.96.0/19",
        AvailabilityZone=f"{REGION}a",
        TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "priv-a"}]}],
    )["Subnet"]
    public_id = None
    if public:
        public_id = ec2.create_subnet(VpcId=vpc, CidrBlock="172.16.0.0/19", AvailabilityZone=f"{REGION}a")["Subnet"][
            "SubnetId"
        ]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=table, SubnetId=public_id)
    return vpc, private["SubnetId"], public_id


def test_adopts_a_vpc_by_id_and_subnets_by_name_and_id(aws: ClientFactory) -> None:
    ec2 = aws.client("ec2")
    vpc, private, public = _existing_vpc(ec2, public=True)
    assert public is not None
    config = config_module.from_mapping(
        {"vpcs": {"vpc1": {"id": vpc, "subnets": {"private": ["priv-a"], "public": [public]}}}}
    )
    experiment = make(aws, config)
    result = experiment.create_network("vpc1")
    assert result.resources == {
        "vpc": vpc,
        "adopted": True,
        "nat_gateway": None,
        "public_subnets": [public],
        "private_subnets": [private],
    }
    assert len(ec2.describe_vpcs()["Vpcs"]) == 2  # the default VPC and the adopted one: nothing created
    assert tags(ec2.describe_subnets(SubnetIds=[public])["Subnets"][0])["kubernetes.io/role/elb"] == "1"
    experiment.cleanup()
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]  # adopted: kept
    left = tags(ec2.describe_subnets(SubnetIds=[private])["Subnets"][0])
    assert left == {"Name": "priv-a"}  # only the tags peerprobe added were removed


def test_adopts_by_discovery_when_only_the_vpc_is_named(aws: ClientFactory) -> None:
    vpc, private, public = _existing_vpc(aws.client("ec2"), public=True)
    config = config_module.from_mapping({"vpcs": {"vpc1": {"id": vpc}}})
    network = make(aws, config).create_network("vpc1").resources
    assert (network["public_subnets"], network["private_subnets"]) == ([public], [private])


def test_refuses_an_internet_facing_load_balancer_without_a_public_subnet(
    aws: ClientFactory, recorder: Recorder
) -> None:
    vpc, _, _ = _existing_vpc(aws.client("ec2"), public=False)
    config = config_module.from_mapping({"vpcs": {"vpc1": {"id": vpc}}})
    before = len(recorder.mutations())
    with pytest.raises(ConfigError, match="could not find any suitable subnets"):
        preflight(config, clients=aws)
    with pytest.raises(ConfigError, match=r"vpcs\.vpc1\.subnets\.public"):
        make(aws, config).create_network("vpc1")
    assert recorder.mutations()[before:] == []  # refused before anything was created


def test_adopting_a_vpc_with_another_cidr_is_a_config_error(aws: ClientFactory) -> None:
    vpc = aws.client("ec2").create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    config = config_module.from_mapping({"vpcs": {"vpc1": {"id": vpc}}})
    with pytest.raises(ConfigError, match=r"vpcs\.vpc1\.cidr: .* has 10\.1\.0\.0/16"):
        make(aws, config).create_network("vpc1")


def test_cluster_follows_the_cluster_config_and_roles_use_the_region_partition(aws: ClientFactory) -> None:
    experiment = make(aws)
    network = experiment.create_network("vpc1").resources
    experiment.create_cluster("vpc1")
    experiment.create_cluster("vpc1")  # idempotent
    eks, iam = aws.client("eks"), aws.client("iam")
    cluster = eks.describe_cluster(name="gcr-eksworkshop-private")["cluster"]
    assert sorted(cluster["resourcesVpcConfig"]["subnetIds"]) == sorted(network["private_subnets"])
    assert cluster["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == "10.100.0.0/16"
    assert cluster["roleArn"].startswith("arn:aws-cn:iam::")
    group = eks.describe_nodegroup(clusterName="gcr-eksworkshop-private", nodegroupName="private-ng")["nodegroup"]
    assert group["instanceTypes"] == ["t3.medium"]
    assert group["scalingConfig"] == {"minSize": 3, "maxSize": 3, "desiredSize": 3}
    assert sorted(group["subnets"]) == sorted(network["private_subnets"])
    node_role = role_name(experiment.config, "node")
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=node_role)["AttachedPolicies"]}
    assert attached == {
        f"arn:aws-cn:iam::aws:policy/{p}"
        for p in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
    }
    trust = iam.get_role(RoleName=node_role)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com.cn"}
    assert len(iam.list_roles(PathPrefix="/")["Roles"]) == 2


def test_partition_follows_the_region(aws: ClientFactory) -> None:
    config = config_module.from_mapping({"region": "us-west-2"})
    with mock_aws():
        experiment = make(ClientFactory("us-west-2"), config)
        experiment.create_network("vpc1")
        experiment.create_cluster("vpc1")
        cluster = experiment.cloud.eks.describe_cluster(name="gcr-eksworkshop-private")["cluster"]
    assert cluster["roleArn"].startswith("arn:aws:iam::")


def test_vpc2_node_group_takes_its_size_and_subnets_from_the_config() -> None:
    config = config_module.from_mapping({"clusters": {"vpc2": {"nodes": 4, "node_subnets": "public"}}})
    spec = cluster_spec(config, "vpc2")
    assert (spec.size, spec.private_networking, spec.instance_type) == (4, False, "t3.medium")


def test_peer_host_runs_amazon_linux_with_the_echo_user_data_and_an_ssm_profile(aws: ClientFactory) -> None:
    experiment = make(aws)
    experiment.create_network("vpc1")
    experiment.create_network("vpc2")
    first = experiment.create_peer_host().resources
    assert experiment.create_peer_host().resources["instance"] == first["instance"]
    ec2 = aws.client("ec2")
    raw = ec2.describe_instances(InstanceIds=[first["instance"]])["Reservations"][0]["Instances"][0]
    assert raw["ImageId"] == "ami-0123456789abcdef0" and raw["InstanceType"] == "t3.micro"
    assert raw["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{role_name(experiment.config, 'host')}")
    user_data = ec2.describe_instance_attribute(InstanceId=first["instance"], Attribute="userData")
    import base64

    text = base64.b64decode(user_data["UserData"]["Value"]).decode()
    assert "def render(" in text and "echo.render(" in text and "systemctl enable --now" in text
    nat_ip = load(experiment.environment).networks["vpc1"].nat_public_ip
    rules = {r.cidr for r in experiment.cloud.ingress_rules(first["security_group"])}
    assert rules == {"172.16.0.0/16", f"{nat_ip}/32"}


def _with_cluster_group(experiment: AwsExperiment, ec2: Any) -> str:
    # moto's EKS assigns no cluster security group; stand one in as EKS would.
    vpc = load(experiment.environment).networks["vpc1"].vpc
    group = ec2.create_security_group(GroupName="eks-cluster-sg", Description="eks", VpcId=vpc)["GroupId"]
    experiment.create_cluster("vpc1")
    experiment._record_cluster_group("vpc1", group)
    return str(group)


def built(experiment: AwsExperiment, ec2: Any) -> AwsExperiment:
    """The cloud side of a run up to the apps: both networks and clusters (VPC1's with the cluster security group
    EKS would assign), the EC2 host, and the peering with the peer rules."""
    for key in ("vpc1", "vpc2"):
        experiment.create_network(key)
        experiment.create_cluster(key)
    _with_cluster_group(experiment, ec2)
    experiment.create_peer_host()
    experiment.peer_vpcs()
    return experiment


CLB = "a068ae19572a411eaa5bc0668f12362a"


def add_classic_elb(clients: ClientFactory, experiment: AwsExperiment) -> None:
    """What cloud-provider-aws makes in VPC1's public subnets for the Service of type LoadBalancer."""
    clients.client("elb").create_load_balancer(
        LoadBalancerName=CLB,
        Subnets=load(experiment.environment).networks["vpc1"].public_subnets,
        Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 32497}],
        Tags=[{"Key": "kubernetes.io/cluster/gcr-eksworkshop-private", "Value": "owned"}],
    )


def serves_classic_elb(kube: FakeKube, clients: ClientFactory) -> None:
    """VPC1's Service of type LoadBalancer, whose deletion takes the Classic ELB away (as the controller does)."""
    kube.services_ = [service("loadbalancer", type_="LoadBalancer", node_port=32497, hostname="x.elb")]
    kube.on_delete_services = lambda: clients.client("elb").delete_load_balancer(LoadBalancerName=CLB)


def test_peering_and_peer_rules(aws: ClientFactory) -> None:
    experiment = make(aws)
    experiment.create_network("vpc1")
    experiment.create_network("vpc2")
    group = _with_cluster_group(experiment, aws.client("ec2"))
    result = experiment.peer_vpcs()
    assert experiment.peer_vpcs().resources["peering"] == result.resources["peering"]
    peering = experiment.cloud.peering(result.resources["peering"])
    assert peering.status == "active"
    state = load(experiment.environment)
    for key, other in (("vpc1", "192.168.0.0/16"), ("vpc2", "172.16.0.0/16")):
        for table in state.networks[key].route_tables:
            routes = {r.destination_cidr: r.target_id for r in experiment.cloud.route_table(table).routes}
            assert routes[other] == peering.id
    opened = {(r.from_port, r.cidr) for r in experiment.cloud.ingress_rules(group)}
    assert opened == {(8080, "192.168.0.0/16"), (32227, "192.168.0.0/16")}


def test_peer_rules_wait_for_the_cluster_security_group(aws: ClientFactory) -> None:
    from peerprobe.errors import WaitTimeoutError

    experiment = make(aws)
    experiment.create_network("vpc1")
    with pytest.raises(WaitTimeoutError, match="not given its cluster security group after"):
        experiment.peer_vpcs()


def test_set_snat_is_absolute_and_reads_back(aws: ClientFactory) -> None:
    config = config_module.load()
    kubes = kube_for(config)
    kubes["vpc2"].env = {"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "172.16.0.0/16", "OTHER": "x"}
    experiment = make(aws, config, kubes)
    applied = experiment.set_snat("vpc2", config_module.Snat(external_snat=True))
    assert applied == config_module.Snat(external_snat=True)
    assert kubes["vpc2"].env == {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true", "OTHER": "x"}
    assert experiment.wait_snat("vpc2", applied, timeout_seconds=1) == applied
    assert kubes["vpc2"].rollouts == 1


def test_deploy_places_pods_on_the_live_nodes_and_applies_no_service(aws: ClientFactory) -> None:
    config = config_module.load()
    kubes = kube_for(config)
    experiment = make(aws, config, kubes)
    experiment.deploy_apps()
    placed = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["nodeName"] for d in kubes["vpc1"].applied}
    nodes = [n.name for n in kubes["vpc1"].nodes_]
    assert placed == {"source-ip-app": nodes[0], "busybox": nodes[-1], "nginx": nodes[0]}
    assert [d["metadata"]["name"] for d in kubes["vpc2"].applied] == ["busybox"]
    assert all(d["kind"] == "Deployment" for k in kubes.values() for d in k.applied)


def test_probe_from_a_pod_is_one_exec_per_batch(aws: ClientFactory) -> None:
    from peerprobe.probes.plan import ProbeSpec

    config = config_module.load()
    kubes = kube_for(config)
    specs = [
        ProbeSpec("vpc2-pod", "pod-ip", "172.16.96.22", 8080),
        ProbeSpec("vpc2-pod", "cluster-ip", "10.100.0.5", 80),
    ]

    def answer(script: str) -> str:
        nonce = script.split("N=", 1)[1].split()[0]
        return "".join(
            f"=={nonce} begin {i}\nrc 1\nelapsed 3\n=={nonce} err {i}\nwget: download timed out\n"
            f"=={nonce} body {i}\n\n=={nonce} end {i}\n"
            for i in range(2)
        )

    kubes["vpc2"].exec_output = answer
    results = make(aws, config, kubes).probe("vpc2-pod", specs, timeout_seconds=3)
    assert [r.outcome for r in results] == ["timeout", "timeout"]
    assert len(kubes["vpc2"].execs) == 1 and kubes["vpc2"].execs[0][0] == "busybox"


def alive(clients: ClientFactory, environment: str) -> dict[str, list[str]]:
    """What still exists of an environment (moto keeps the tags of deleted resources, so read each kind)."""
    ec2, mine = clients.client("ec2"), [{"Name": "tag:peerprobe:environment", "Values": [environment]}]
    found = {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=mine)["Vpcs"]],
        "addresses": [a["AllocationId"] for a in ec2.describe_addresses(Filters=mine)["Addresses"]],
        "instances": [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=mine)["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] != "terminated"
        ],
        "nat": [
            n["NatGatewayId"]
            for n in ec2.describe_nat_gateways(Filter=mine)["NatGateways"]
            if n["State"] not in ("deleted", "deleting")
        ],
        "groups": [g["GroupName"] for g in ec2.describe_security_groups(Filters=mine)["SecurityGroups"]],
        "peering": [
            p["VpcPeeringConnectionId"]
            for p in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
            if p["Status"]["Code"] not in ("deleted", "deleting")
        ],
        "clusters": clients.client("eks").list_clusters()["clusters"],
        "elbs": [
            lb["LoadBalancerName"] for lb in clients.client("elb").describe_load_balancers()["LoadBalancerDescriptions"]
        ],
        "roles": [r["RoleName"] for r in clients.client("iam").list_roles(PathPrefix="/")["Roles"]],
        "profiles": [
            p["InstanceProfileName"] for p in clients.client("iam").list_instance_profiles()["InstanceProfiles"]
        ],
    }
    return {kind: ids for kind, ids in found.items() if ids}


# Cleanup's stages: each waits for the one before; within a stage the parts run at once (the host and both
# clusters; then both networks), so only the stages' order is fixed.
DELETION_STAGES = [
    {"DeleteLoadBalancer"},
    {"RevokeSecurityGroupIngress"},
    {"DeleteVpcPeeringConnection"},
    {"TerminateInstances", "DeleteNodegroup", "DeleteCluster"},
    {"DeleteVpc"},
    {"DeleteRole"},
]


def test_cleanup_goes_in_dependency_order_and_leaves_nothing(aws: ClientFactory, recorder: Recorder) -> None:
    config = config_module.load()
    kubes = kube_for(config)
    experiment = built(make(aws, config, kubes), aws.client("ec2"))
    add_classic_elb(aws, experiment)
    serves_classic_elb(kubes["vpc1"], aws)
    recorder.calls.clear()
    experiment.cleanup()
    experiment.cleanup()  # absent is success
    assert alive(aws, experiment.environment) == {}
    assert not aws.client("iam").list_roles(PathPrefix="/")["Roles"]
    stage_of = {operation: n for n, stage in enumerate(DELETION_STAGES) for operation in stage}
    stages = [stage_of[c.split(":")[1]] for c in recorder.calls if c.split(":")[1] in stage_of]
    assert stages == sorted(stages) and set(stages) == set(range(len(DELETION_STAGES)))
    assert not experiment.exists()


def test_unreachable_cluster_gets_its_load_balancers_deleted_directly(aws: ClientFactory) -> None:
    from peerprobe.errors import TransientError

    config = config_module.load()
    kubes = kube_for(config)
    experiment = make(aws, config, kubes)
    experiment.create_network("vpc1")
    experiment.create_cluster("vpc1")
    elb = aws.client("elb")
    elb.create_load_balancer(
        LoadBalancerName="leftover",
        Subnets=load(experiment.environment).networks["vpc1"].public_subnets,
        Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
        Tags=[{"Key": "kubernetes.io/cluster/gcr-eksworkshop-private", "Value": "owned"}],
    )

    def unreachable() -> None:
        raise TransientError("cluster gone", resource="cluster", resource_id="x", state="unreachable")

    kubes["vpc1"].on_delete_services = unreachable
    experiment.cleanup()
    assert elb.describe_load_balancers()["LoadBalancerDescriptions"] == []


def test_services_get_the_planned_node_ports_the_peer_rules_open(aws: ClientFactory) -> None:
    from peerprobe.topology import plan

    config = config_module.load()
    kubes = kube_for(config)
    experiment = make(aws, config, kubes)
    experiment.deploy_apps()
    kubes["vpc1"].applied.clear()
    experiment.expose_services()
    planned = plan(config, backend="aws").vpc1
    given = {d["metadata"]["name"]: d["spec"]["ports"][0].get("nodePort") for d in kubes["vpc1"].applied}
    assert given["nodeport"] == planned.node_port
    assert planned.node_port in {rule.from_port for rule in peer_rules(config, plan(config, backend="aws"))}


# --- issue 12: the cloud side of a run and its cleanup against AWS as it behaves (AwsBehaviour, _fakes.py) ----


def test_a_run_and_its_cleanup_complete_against_aws_as_it_behaves(aws: ClientFactory, behaviour: Any) -> None:
    """EKS refuses the cluster role while IAM propagates; the peering shows initiating-request first; after
    DeleteCluster, EKS's interfaces keep subnets, a group and the VPC in use for a while. The run still ends
    with an active peering, and cleanup still leaves nothing."""
    role_not_yet = "Role with arn: arn:aws-cn:iam::123456789012:role/x, could not be assumed because it does not exist"
    behaviour.fail("eks:CreateCluster", "InvalidParameterException", message=role_not_yet, times=2)

    def initiating(answer: dict[str, Any]) -> bool:
        for raw in answer["VpcPeeringConnections"]:
            raw["Status"] = {"Code": "initiating-request", "Message": "Initiating Request"}
        return bool(answer["VpcPeeringConnections"])

    behaviour.rewrite("ec2:DescribeVpcPeeringConnections", initiating, times=2)
    config = config_module.load()
    experiment = built(make(aws, config, kube_for(config)), aws.client("ec2"))
    peering = load(experiment.environment).peering
    assert peering is not None and experiment.cloud.peering(peering).status == "active"
    for operation in ("ec2:DeleteSubnet", "ec2:DeleteVpc", "ec2:DeleteSecurityGroup"):
        behaviour.fail(operation, "DependencyViolation", times=2)
    experiment.cleanup()
    assert alive(aws, experiment.environment) == {}
    assert behaviour.answered.count("ec2:DeleteSubnet DependencyViolation") == 2
