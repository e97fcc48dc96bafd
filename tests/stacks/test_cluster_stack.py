"""Fine-grained assertions on the cluster stack (what scanners cannot see)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Match

from neuron_platform import facts, versions
from neuron_platform.cluster.karpenter import INTERRUPTION_EVENTS
from tests.conftest import SynthesizedApp
from tests.helm_render import app_releases, render
from tests.helpers import helm_charts, manifests, props, resources

# --- helpers ----------------------------------------------------------------------


def cluster_json(app: SynthesizedApp) -> dict[str, Any]:
    return app.template_json(app.platform.cluster)


def only(app: SynthesizedApp, type_name: str) -> tuple[str, dict[str, Any]]:
    (item,) = resources(app.template(app.platform.cluster), type_name).items()
    return item


def objects(app: SynthesizedApp, kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests(cluster_json(app)) if m["kind"] == kind}


# --- control plane -------------------------------------------------------------------


def test_kubernetes_version_and_not_auto_mode(default_app: SynthesizedApp) -> None:
    _, cluster = only(default_app, "AWS::EKS::Cluster")
    assert props(cluster)["Version"] == versions.KUBERNETES_VERSION
    assert props(cluster)["ComputeConfig"] == {"Enabled": False}
    assert props(cluster)["BootstrapSelfManagedAddons"] is False
    assert props(cluster)["Name"] == "neuron"


def test_all_five_control_plane_log_types(default_app: SynthesizedApp) -> None:
    _, cluster = only(default_app, "AWS::EKS::Cluster")
    types = [t["Type"] for t in props(cluster)["Logging"]["ClusterLogging"]["EnabledTypes"]]
    assert sorted(types) == ["api", "audit", "authenticator", "controllerManager", "scheduler"]


def test_control_plane_log_group_is_ours_encrypted_and_retained(training_app: SynthesizedApp) -> None:
    groups = resources(training_app.template(training_app.platform.cluster), "AWS::Logs::LogGroup")
    (group,) = [g for g in groups.values() if props(g).get("LogGroupName") == "/aws/eks/trn-train/cluster"]
    assert props(group)["RetentionInDays"] == 731
    assert "KmsKeyId" in props(group)
    assert group["DeletionPolicy"] == "Retain"
    _, cluster = only(training_app, "AWS::EKS::Cluster")
    assert any(d.startswith("ControlPlaneLogs") for d in cluster["DependsOn"])


def test_every_log_group_in_the_stack_is_kms_encrypted(synthesized: dict[str, SynthesizedApp]) -> None:
    for app in synthesized.values():
        for logical_id, group in resources(app.template(app.platform.cluster), "AWS::Logs::LogGroup").items():
            assert "KmsKeyId" in props(group), (app.name, logical_id)


def test_secrets_are_envelope_encrypted_with_a_rotating_retained_key(default_app: SynthesizedApp) -> None:
    _, cluster = only(default_app, "AWS::EKS::Cluster")
    (encryption,) = props(cluster)["EncryptionConfig"]
    assert encryption["Resources"] == ["secrets"]
    key_id = encryption["Provider"]["KeyArn"]["Fn::GetAtt"][0]
    key = resources(default_app.template(default_app.platform.cluster), "AWS::KMS::Key")[key_id]
    assert props(key)["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_default_endpoint_is_private_only(default_app: SynthesizedApp) -> None:
    _, cluster = only(default_app, "AWS::EKS::Cluster")
    vpc_config = props(cluster)["ResourcesVpcConfig"]
    assert vpc_config["EndpointPrivateAccess"] is True
    assert vpc_config["EndpointPublicAccess"] is False
    assert "PublicAccessCidrs" not in vpc_config


def test_public_endpoint_is_restricted_to_configured_cidrs(training_app: SynthesizedApp) -> None:
    _, cluster = only(training_app, "AWS::EKS::Cluster")
    vpc_config = props(cluster)["ResourcesVpcConfig"]
    assert vpc_config["EndpointPrivateAccess"] is True
    assert vpc_config["EndpointPublicAccess"] is True
    assert vpc_config["PublicAccessCidrs"] == ["203.0.113.0/24"]


def test_authentication_by_access_entries_only(training_app: SynthesizedApp) -> None:
    _, cluster = only(training_app, "AWS::EKS::Cluster")
    assert props(cluster)["AccessConfig"]["AuthenticationMode"] == "API"
    entries = resources(training_app.template(training_app.platform.cluster), "AWS::EKS::AccessEntry").values()
    admins = [
        e for e in entries if props(e).get("PrincipalArn") == "arn:aws:iam::123456789012:role/TrainingPlatformAdmin"
    ]
    (admin,) = admins
    (policy,) = props(admin)["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "cluster"}
    assert policy["PolicyArn"]["Fn::Join"][1][-1].endswith("AmazonEKSClusterAdminPolicy")


def test_service_cidr(default_app: SynthesizedApp) -> None:
    _, cluster = only(default_app, "AWS::EKS::Cluster")
    assert props(cluster)["KubernetesNetworkConfig"]["ServiceIpv4Cidr"] == "172.20.0.0/16"


# --- system node group --------------------------------------------------------------


def test_system_node_group_is_small_on_demand_and_labelled(training_app: SynthesizedApp) -> None:
    _, group = only(training_app, "AWS::EKS::Nodegroup")
    assert props(group)["CapacityType"] == "ON_DEMAND"
    assert props(group)["AmiType"] == "AL2023_x86_64_STANDARD"
    assert props(group)["InstanceTypes"] == ["m7i.xlarge", "m6i.xlarge"]
    assert props(group)["ScalingConfig"] == {"DesiredSize": 3, "MaxSize": 6, "MinSize": 3}
    assert props(group)["Labels"] == {"neuron-platform/role": "system"}
    assert len(props(group)["Subnets"]) == 3  # one private subnet per zone
    assert props(group)["NodeRepairConfig"] == {"Enabled": True}


def test_system_nodes_use_imdsv2_hop_limit_1_and_encrypted_volumes(default_app: SynthesizedApp) -> None:
    _, template = only(default_app, "AWS::EC2::LaunchTemplate")
    data = props(template)["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
    (volume,) = data["BlockDeviceMappings"]
    assert volume["Ebs"] == {"DeleteOnTermination": True, "Encrypted": True, "VolumeSize": 50, "VolumeType": "gp3"}


# --- add-ons --------------------------------------------------------------------------


def test_every_addon_is_pinned(default_app: SynthesizedApp) -> None:
    addons = resources(default_app.template(default_app.platform.cluster), "AWS::EKS::Addon").values()
    assert {props(a)["AddonName"]: props(a)["AddonVersion"] for a in addons} == versions.EKS_ADDONS


def test_vpc_cni_uses_prefix_delegation_and_its_own_pod_identity_role(default_app: SynthesizedApp) -> None:
    addons = resources(default_app.template(default_app.platform.cluster), "AWS::EKS::Addon").values()
    (cni,) = [a for a in addons if props(a)["AddonName"] == "vpc-cni"]
    assert json.loads(props(cni)["ConfigurationValues"])["env"]["ENABLE_PREFIX_DELEGATION"] == "true"
    (association,) = props(cni)["PodIdentityAssociations"]
    assert association["ServiceAccount"] == "aws-node"
    (ebs,) = [a for a in addons if props(a)["AddonName"] == "aws-ebs-csi-driver"]
    assert props(ebs)["PodIdentityAssociations"][0]["ServiceAccount"] == "ebs-csi-controller-sa"
    assert association["RoleArn"] != props(ebs)["PodIdentityAssociations"][0]["RoleArn"]


def test_pod_identity_roles_trust_only_eks_pod_identity(default_app: SynthesizedApp) -> None:
    roles = resources(default_app.template(default_app.platform.cluster), "AWS::IAM::Role")
    pod_roles = [
        r
        for r in roles.values()
        if any(
            s["Principal"].get("Service") == "pods.eks.amazonaws.com"
            for s in props(r)["AssumeRolePolicyDocument"]["Statement"]
        )
    ]
    assert len(pod_roles) == 4  # VPC CNI, EBS CSI, Karpenter, Load Balancer Controller: one each
    for role in pod_roles:
        (statement,) = props(role)["AssumeRolePolicyDocument"]["Statement"]
        assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]


def test_bootstrap_addons_come_before_nodes_and_the_rest_after(default_app: SynthesizedApp) -> None:
    template = default_app.template(default_app.platform.cluster)
    addons = resources(template, "AWS::EKS::Addon")
    by_name = {props(a)["AddonName"]: logical for logical, a in addons.items()}
    group_id, group = only(default_app, "AWS::EKS::Nodegroup")
    for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert by_name[name] in group["DependsOn"]
    for name in ("coredns", "aws-ebs-csi-driver", "eks-node-monitoring-agent", "metrics-server"):
        assert group_id in addons[by_name[name]]["DependsOn"]


# --- Karpenter ------------------------------------------------------------------------


def test_interruption_queue_is_encrypted_tls_only_with_short_retention(default_app: SynthesizedApp) -> None:
    _, queue = only(default_app, "AWS::SQS::Queue")
    assert props(queue)["MessageRetentionPeriod"] == 300
    assert props(queue)["SqsManagedSseEnabled"] is True
    _, policy = only(default_app, "AWS::SQS::QueuePolicy")
    statements = props(policy)["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert len(deny) == 1
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    senders = [s for s in statements if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"] for s in senders} == {"events.amazonaws.com"}


def test_five_interruption_rules_target_the_queue(default_app: SynthesizedApp) -> None:
    queue_id, _ = only(default_app, "AWS::SQS::Queue")
    rules = resources(default_app.template(default_app.platform.cluster), "AWS::Events::Rule").values()
    patterns = sorted(
        (props(r)["EventPattern"]["source"][0], props(r)["EventPattern"]["detail-type"][0]) for r in rules
    )
    assert patterns == sorted(INTERRUPTION_EVENTS.values())
    for rule in rules:
        (target,) = props(rule)["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def _karpenter_policy(app: SynthesizedApp) -> list[dict[str, Any]]:
    policies = resources(app.template(app.platform.cluster), "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("KarpenterControllerPolicy")]
    statements: list[dict[str, Any]] = props(policy)["PolicyDocument"]["Statement"]
    return statements


def test_karpenter_can_only_touch_this_clusters_instances(default_app: SynthesizedApp) -> None:
    statements = {s["Sid"]: s for s in _karpenter_policy(default_app)}
    owned = {"aws:ResourceTag/kubernetes.io/cluster/neuron": "owned"}
    assert statements["AllowScopedDeletion"]["Condition"]["StringEquals"] == owned
    assert sorted(statements["AllowScopedDeletion"]["Action"]) == ["ec2:DeleteLaunchTemplate", "ec2:TerminateInstances"]
    create = statements["AllowScopedEC2InstanceActionsWithTags"]["Condition"]["StringEquals"]
    assert create == {
        "aws:RequestTag/kubernetes.io/cluster/neuron": "owned",
        "aws:RequestTag/eks:eks-cluster-name": "neuron",
    }
    reads = statements["AllowRegionalReadActions"]
    assert reads["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert "ec2:DescribeInstanceStatus" in reads["Action"]


def test_karpenter_passes_only_its_node_role(default_app: SynthesizedApp) -> None:
    statements = {s["Sid"]: s for s in _karpenter_policy(default_app)}
    roles = resources(default_app.template(default_app.platform.cluster), "AWS::IAM::Role")
    (node_role_id,) = [k for k in roles if k.startswith("KarpenterNodeRole")]
    assert statements["AllowPassingInstanceRole"]["Resource"] == {"Fn::GetAtt": [node_role_id, "Arn"]}


def test_karpenter_node_role_has_an_ec2_linux_access_entry(default_app: SynthesizedApp) -> None:
    entries = resources(default_app.template(default_app.platform.cluster), "AWS::EKS::AccessEntry").values()
    (node_entry,) = [e for e in entries if props(e).get("Type") == "EC2_LINUX"]
    assert props(node_entry)["PrincipalArn"]["Fn::GetAtt"][0].startswith("KarpenterNodeRole")


def test_karpenter_controller_identity_is_pod_identity(default_app: SynthesizedApp) -> None:
    associations = resources(default_app.template(default_app.platform.cluster), "AWS::EKS::PodIdentityAssociation")
    accounts = sorted((props(a)["Namespace"], props(a)["ServiceAccount"]) for a in associations.values())
    assert accounts == [("kube-system", "aws-load-balancer-controller"), ("kube-system", "karpenter")]


def test_karpenter_charts_are_pinned_with_crds_from_their_own_chart(default_app: SynthesizedApp) -> None:
    charts = helm_charts(cluster_json(default_app))
    assert charts["karpenter-crd"]["Version"] == versions.KARPENTER_VERSION
    assert charts["karpenter-crd"]["Repository"] == "oci://public.ecr.aws/karpenter/karpenter-crd"
    controller = charts["karpenter"]
    assert controller["Version"] == versions.KARPENTER_VERSION
    assert controller["SkipCrds"] is True
    assert controller["Namespace"] == "kube-system"


def test_karpenter_values(default_app: SynthesizedApp) -> None:
    values = helm_charts(cluster_json(default_app))["karpenter"]["Values"]
    assert values["settings"]["clusterName"] == "neuron"
    assert values["settings"]["interruptionQueue"] == "placeholder"  # the queue's QueueName attribute
    assert values["settings"]["featureGates"] == {
        "nodeRepair": True,
        "reservedCapacity": True,
        "nodeOverlay": False,
        "staticCapacity": False,
    }
    assert values["serviceAccount"]["name"] == "karpenter"
    assert values["nodeSelector"]["neuron-platform/role"] == "system"
    raw = resources(default_app.template(default_app.platform.cluster), "Custom::AWSCDK-EKS-HelmChart")
    (karpenter,) = [c for c in raw.values() if props(c)["Release"] == "karpenter"]
    assert any(
        isinstance(p, dict) and p.get("Fn::GetAtt", [None, None])[1] == "QueueName"
        for p in props(karpenter)["Values"]["Fn::Join"][1]
    )


# --- device plugins and load balancer controller ----------------------------------------


def _rendered(app: SynthesizedApp, release: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> the objects the release renders from its vendored chart (tests/helm_render)."""
    (found,) = [r for r in app_releases(app.outdir) if r.stack == app.platform.cluster.stack_name and r.name == release]
    return {(o["kind"], o["metadata"]["name"]): o for o in render(found)}


def test_neuron_chart_renders_plugin_scheduler_and_health_checks(default_app: SynthesizedApp) -> None:
    chart = helm_charts(cluster_json(default_app))["neuron"]
    assert (chart["Repository"], chart["Version"]) == (versions.NEURON_CHART.repository, versions.NEURON_CHART.version)
    rendered = _rendered(default_app, "neuron")
    neuron_toleration = {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}
    plugin = rendered[("DaemonSet", "neuron-device-plugin")]["spec"]["template"]["spec"]
    assert neuron_toleration in plugin["tolerations"]  # the chart's own default
    scheduler = rendered[("Deployment", "my-scheduler")]["spec"]["template"]["spec"]
    (container,) = scheduler["containers"]
    assert container["image"] == versions.NEURON_CUSTOM_SCHEDULER_IMAGE
    assert scheduler["nodeSelector"]["neuron-platform/role"] == "system"
    assert ("Deployment", "k8s-neuron-scheduler") in rendered
    npd = rendered[("DaemonSet", "node-problem-detector")]
    assert npd["metadata"]["namespace"] == "neuron-healthcheck-system"
    containers = {c["name"]: c for c in npd["spec"]["template"]["spec"]["containers"]}
    recovery = {e["name"]: e.get("value") for e in containers["node-recovery"]["env"]}
    assert recovery["ENABLE_RECOVERY"] == "false"  # monitor mode: the chart's default, kept
    script = containers["node-problem-detector"]["command"][-1]
    assert 'grep -q "/dev/kmsg"' in script  # the chart's watchdog is kept
    assert "--prometheus-address=0.0.0.0" in script


def test_npd_namespace_and_neuron_monitor_are_applied_before_the_chart(default_app: SynthesizedApp) -> None:
    namespaces = set(objects(default_app, "Namespace"))
    assert {"neuron-healthcheck-system", "neuron-monitor"} <= namespaces
    raw = resources(default_app.template(default_app.platform.cluster), "Custom::AWSCDK-EKS-HelmChart")
    (neuron,) = [r for r in raw.values() if props(r)["Release"] == "neuron"]
    assert any(d.startswith("ClustermanifestNeuronNamespaces") for d in neuron["DependsOn"])
    monitor = objects(default_app, "DaemonSet")["neuron-monitor"]
    pod = monitor["spec"]["template"]["spec"]
    assert {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    (types,) = [e["values"] for e in term["matchExpressions"] if e["key"] == "node.kubernetes.io/instance-type"]
    assert set(facts.INSTANCE_TYPES) <= set(types)


def test_efa_plugin_only_where_efa_pools_exist(synthesized: dict[str, SynthesizedApp]) -> None:
    for name, app in synthesized.items():
        charts = helm_charts(cluster_json(app))
        has_efa = any(p.efa for p in app.config.pools)
        assert ("aws-efa-k8s-device-plugin" in charts) == has_efa, name
        if has_efa:
            values = charts["aws-efa-k8s-device-plugin"]["Values"]
            assert values["nodeSelector"] == {"neuron-platform/efa": "true"}
            assert {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"} in values[
                "tolerations"
            ]
            assert charts["aws-efa-k8s-device-plugin"]["Version"] == versions.EFA_DEVICE_PLUGIN_CHART.version


def test_no_second_neuron_device_plugin(synthesized: dict[str, SynthesizedApp]) -> None:
    for app in synthesized.values():
        names = [m["metadata"]["name"] for m in manifests(cluster_json(app))]
        assert not any("neuron-device-plugin" in n for n in names)
        # The only DaemonSet applied outside a chart is neuron-monitor.
        assert [m["metadata"]["name"] for m in manifests(cluster_json(app)) if m["kind"] == "DaemonSet"] == [
            "neuron-monitor"
        ]


def test_load_balancer_controller_is_pinned_and_told_region_and_vpc(default_app: SynthesizedApp) -> None:
    chart = helm_charts(cluster_json(default_app))["aws-load-balancer-controller"]
    assert chart["Version"] == versions.LOAD_BALANCER_CONTROLLER_CHART.version
    assert chart["Values"]["region"] == "us-east-1"
    assert chart["Values"]["vpcId"] == "vpc-0imported0"
    assert chart["Values"]["clusterName"] == "neuron"


# --- Neuron pools -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "inference-small", "training-multinode", "existing-vpc"])
def test_one_nodepool_and_nodeclass_per_configured_pool(synthesized: dict[str, SynthesizedApp], name: str) -> None:
    app = synthesized[name]
    expected = {p.name for p in app.config.pools}
    assert set(objects(app, "NodePool")) == expected
    assert set(objects(app, "EC2NodeClass")) == expected


def test_every_pool_is_tainted_and_limited(synthesized: dict[str, SynthesizedApp]) -> None:
    for app in synthesized.values():
        for pool in objects(app, "NodePool").values():
            spec = pool["spec"]
            assert spec["template"]["spec"]["taints"] == [{"key": "aws.amazon.com/neuron", "effect": "NoSchedule"}]
            # Static pools take only a node limit (Karpenter's CRD rule).
            expected = {"nodes"} if "replicas" in spec else {"cpu", "memory", "aws.amazon.com/neuron"}
            assert set(spec["limits"]) == expected


def test_disruption_by_purpose(training_app: SynthesizedApp, synthesized: dict[str, SynthesizedApp]) -> None:
    training = objects(training_app, "NodePool")["trn1-efa"]["spec"]["disruption"]
    assert training == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30m", "budgets": [{"nodes": "10%"}]}
    inference = objects(synthesized["inference-small"], "NodePool")["inf2-serving"]["spec"]["disruption"]
    assert inference["consolidationPolicy"] == "WhenEmptyOrUnderutilized"


def test_every_node_class_pins_the_ami_uses_imdsv2_hop_1_and_encrypts(synthesized: dict[str, SynthesizedApp]) -> None:
    for app in synthesized.values():
        for node_class in objects(app, "EC2NodeClass").values():
            spec = node_class["spec"]
            # Each pool's own AMI release: the newest the Neuron data says runs its runtimes.
            pool = node_class["metadata"]["name"]
            alias = app.config.pool_stack(pool).ami_alias
            assert spec["amiSelectorTerms"] == [{"alias": alias}]
            assert alias.startswith("al2023@v")
            assert "latest" not in alias
            assert spec["metadataOptions"]["httpTokens"] == "required"
            assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
            (root,) = spec["blockDeviceMappings"]
            assert root["ebs"]["encrypted"] is True
            assert spec["associatePublicIPAddress"] is False


def test_root_volumes_and_instance_store_by_family(synthesized: dict[str, SynthesizedApp]) -> None:
    inf2 = objects(synthesized["default"], "EC2NodeClass")["inf2-inference"]["spec"]
    assert inf2["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "500Gi"
    assert "instanceStorePolicy" not in inf2
    trn = objects(synthesized["training-multinode"], "EC2NodeClass")["trn1-dev"]["spec"]
    assert trn["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "100Gi"
    assert trn["instanceStorePolicy"] == "RAID0"


def test_efa_pool_has_its_own_class_zone_placement_group_and_efa_group(training_app: SynthesizedApp) -> None:
    node_class = objects(training_app, "EC2NodeClass")["trn1-efa"]["spec"]
    pool = objects(training_app, "NodePool")["trn1-efa"]["spec"]["template"]
    assert {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]} in pool["spec"][
        "requirements"
    ]
    assert pool["metadata"]["labels"]["neuron-platform/efa"] == "true"
    assert len(node_class["subnetSelectorTerms"]) == 1  # the zone's node subnet only
    assert "vm.nr_hugepages=5128" in node_class["userData"]  # hugepages for libfabric, before kubelet
    assert len(node_class["securityGroupSelectorTerms"]) == 2  # cluster SG + EFA SG
    assert node_class["placementGroupSelector"] == {"name": "placement-group-name"}
    raw = resources(training_app.template(training_app.platform.cluster), "Custom::AWSCDK-EKS-KubernetesResource")
    (efa_manifest,) = [m for k, m in raw.items() if "Pooltrn1efa" in k]
    parts = props(efa_manifest)["Manifest"]["Fn::Join"][1]
    refs = [p for p in parts if isinstance(p, dict)]
    assert any(p.get("Ref", "").startswith("Pooltrn1efaPlacementGroup") for p in refs)
    assert any("EfaGroup" in str(p) for p in refs)  # the EFA security group from the network stack
    groups = resources(training_app.template(training_app.platform.cluster), "AWS::EC2::PlacementGroup")
    assert len(groups) == 2
    assert all(props(g)["Strategy"] == "cluster" for g in groups.values())


def test_non_efa_pools_have_no_efa_group_or_placement_group(training_app: SynthesizedApp) -> None:
    dev = objects(training_app, "EC2NodeClass")["trn1-dev"]["spec"]
    assert "userData" not in dev
    assert len(dev["securityGroupSelectorTerms"]) == 1
    assert "placementGroupSelector" not in dev
    assert len(dev["subnetSelectorTerms"]) == 3


def test_reserved_capacity_first_with_reservation_selectors(training_app: SynthesizedApp) -> None:
    requirements = objects(training_app, "NodePool")["trn1-efa"]["spec"]["template"]["spec"]["requirements"]
    (capacity,) = [r for r in requirements if r["key"] == "karpenter.sh/capacity-type"]
    assert capacity["values"] == ["reserved", "on-demand"]
    terms = objects(training_app, "EC2NodeClass")["trn1-efa"]["spec"]["capacityReservationSelectorTerms"]
    assert terms == [{"id": "cr-0123456789abcdef0"}, {"id": "cr-0fedcba9876543210"}]


def test_pools_wait_for_karpenter_and_the_device_plugins(default_app: SynthesizedApp) -> None:
    raw = resources(default_app.template(default_app.platform.cluster), "Custom::AWSCDK-EKS-KubernetesResource")
    pools = {k: m for k, m in raw.items() if k.startswith("ClustermanifestPool")}
    assert pools
    for manifest in pools.values():
        depends = manifest["DependsOn"]
        assert any(d.startswith("ClusterchartKarpenter") and "Crds" not in d for d in depends)
        assert any(d.startswith("ClusterchartNeuron") for d in depends)


# --- teardown -------------------------------------------------------------------------


def test_teardown_runs_after_the_controller_is_gone_and_before_roles(default_app: SynthesizedApp) -> None:
    template = default_app.template(default_app.platform.cluster)
    (teardown_id,) = resources(template, "Custom::KarpenterTeardown")
    charts = resources(template, "Custom::AWSCDK-EKS-HelmChart")
    (controller,) = [c for c in charts.values() if props(c)["Release"] == "karpenter"]
    assert teardown_id in controller["DependsOn"]  # deleted after the controller is uninstalled
    teardown = resources(template, "Custom::KarpenterTeardown")[teardown_id]
    cluster_id, _ = only(default_app, "AWS::EKS::Cluster")
    assert cluster_id in teardown["DependsOn"]
    assert any(d.startswith("KarpenterNodeRole") for d in teardown["DependsOn"])
    assert props(teardown)["ClusterName"] == "neuron"


def test_teardown_function_may_terminate_only_karpenter_instances_of_this_cluster(default_app: SynthesizedApp) -> None:
    policies = resources(default_app.template(default_app.platform.cluster), "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("KarpenterTeardownRoleDefaultPolicy")]
    statements = props(policy)["PolicyDocument"]["Statement"]
    (terminate,) = [s for s in statements if s["Action"] == "ec2:TerminateInstances"]
    assert terminate["Condition"] == {
        "StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/neuron": "owned"},
        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
    }
    default_app.template(default_app.platform.cluster).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handler.handler",
            "Timeout": 900,
            "ReservedConcurrentExecutions": 1,
            "Runtime": Match.string_like_regexp("python3"),
        },
    )


def test_charts_wait_for_the_system_nodes(default_app: SynthesizedApp) -> None:
    group_id, _ = only(default_app, "AWS::EKS::Nodegroup")
    charts = resources(default_app.template(default_app.platform.cluster), "Custom::AWSCDK-EKS-HelmChart")
    for chart in charts.values():
        if props(chart)["Release"] != "karpenter-crd":  # CRDs need no nodes
            assert group_id in chart["DependsOn"], props(chart)["Release"]


# --- training -------------------------------------------------------------------------


def test_no_training_stack_pieces_unless_enabled(synthesized: dict[str, SynthesizedApp]) -> None:
    for name, app in synthesized.items():
        charts = helm_charts(cluster_json(app))
        assert ("kubeflow-trainer" in charts) == app.config.training.enabled, name
        assert bool(objects(app, "ClusterTrainingRuntime")) == app.config.training.enabled, name


def test_kubeflow_trainer_is_pinned_with_jobset_on_system_nodes(training_app: SynthesizedApp) -> None:
    chart = helm_charts(cluster_json(training_app))["kubeflow-trainer"]
    assert chart["Repository"] == "oci://ghcr.io/kubeflow/charts/kubeflow-trainer"
    assert chart["Version"] == versions.KUBEFLOW_TRAINER_CHART.version
    assert chart["Namespace"] == "kubeflow-system"
    assert chart["CreateNamespace"] is True
    rendered = _rendered(training_app, "kubeflow-trainer")
    (jobset,) = rendered[("Deployment", "jobset-controller")]["spec"]["template"]["spec"]["containers"]
    assert jobset["image"] == versions.JOBSET_IMAGE  # not the staging image the chart's git values name
    manager = rendered[("Deployment", "kubeflow-trainer-controller-manager")]["spec"]["template"]["spec"]
    assert manager["nodeSelector"]["neuron-platform/role"] == "system"
    assert not [k for k in rendered if k[0] == "ClusterTrainingRuntime"]  # the chart's examples stay off


def test_karpenter_node_overlay_gate_follows_training(training_app: SynthesizedApp) -> None:
    values = helm_charts(cluster_json(training_app))["karpenter"]["Values"]
    assert values["settings"]["featureGates"]["nodeOverlay"] is True


def test_static_capacity_gate_and_replicas_only_where_a_pool_keeps_nodes(
    synthesized: dict[str, SynthesizedApp],
) -> None:
    for name, app in synthesized.items():
        static = {p.name: p for p in app.config.pools if p.static_nodes}
        gates = helm_charts(cluster_json(app))["karpenter"]["Values"]["settings"]["featureGates"]
        assert gates["staticCapacity"] is bool(static), name
        for pool_name, pool in objects(app, "NodePool").items():
            if pool_name in static:
                # Only limits.nodes on a static pool (Karpenter's CRD rule), above replicas for replacements.
                assert pool["spec"]["replicas"] == static[pool_name].static_nodes
                assert pool["spec"]["limits"] == {"nodes": str(static[pool_name].max_nodes)}
            else:
                assert "replicas" not in pool["spec"], (name, pool_name)
    assert objects(synthesized["training-multinode"], "NodePool")["trn1-efa"]["spec"]["replicas"] == 4


# --- gang admission -------------------------------------------------------------------------


def test_kueue_only_with_training(synthesized: dict[str, SynthesizedApp]) -> None:
    for name, app in synthesized.items():
        assert ("kueue" in helm_charts(cluster_json(app))) == app.config.training.enabled, name
        assert bool(objects(app, "ClusterQueue")) == app.config.training.enabled, name


def test_kueue_is_pinned_on_system_nodes_with_only_the_trainjob_integration(training_app: SynthesizedApp) -> None:
    chart = helm_charts(cluster_json(training_app))["kueue"]
    assert (chart["Repository"], chart["Version"]) == (versions.KUEUE_CHART.repository, versions.KUEUE_CHART.version)
    assert chart["Namespace"] == "kueue-system"
    assert chart["CreateNamespace"] is True
    assert chart["Wait"] is True
    rendered = _rendered(training_app, "kueue")
    manager = rendered[("Deployment", "kueue-controller-manager")]
    assert manager["spec"]["replicas"] == 2
    pod = manager["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "manager"]
    assert container["image"] == versions.KUEUE_IMAGE  # not the staging image the chart's git values name
    assert pod["nodeSelector"]["neuron-platform/role"] == "system"
    assert rendered[("PodDisruptionBudget", "kueue-manager-pdb")]["spec"]["minAvailable"] == 1
    config = yaml.safe_load(rendered[("ConfigMap", "kueue-manager-config")]["data"]["controller_manager_config.yaml"])
    assert config["integrations"]["frameworks"] == ["trainer.kubeflow.org/trainjob"]
    assert config["waitForPodsReady"]["timeout"] == "30m"
    assert config["internalCertManagement"]["enable"] is True  # the chart's own addition, kept


def test_one_queue_per_efa_training_pool_with_the_pools_capacity(training_app: SynthesizedApp) -> None:
    queues = objects(training_app, "ClusterQueue")
    assert set(queues) == {"neuron-trn1-efa", "neuron-trn1n-efa"}
    quota = {
        r["name"]: r["nominalQuota"]
        for r in queues["neuron-trn1-efa"]["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
    }
    trn1 = facts.instance_type("trn1.32xlarge")  # trn1-efa keeps 4 nodes
    assert quota["aws.amazon.com/neuron"] == str(4 * trn1.neuron_devices)
    assert quota["vpc.amazonaws.com/efa"] == str(4 * trn1.efa_interfaces)
    local = objects(training_app, "LocalQueue")
    assert {n: q["metadata"]["namespace"] for n, q in local.items()} == {
        "neuron-trn1-efa": "training",
        "neuron-trn1n-efa": "training",
    }
    flavors = objects(training_app, "ResourceFlavor")
    assert flavors["neuron-trn1-efa"]["spec"]["topologyName"] == "neuron-network"
    assert "topologyName" not in flavors["neuron-trn1n-efa"]["spec"]
    assert set(objects(training_app, "Topology")) == {"neuron-network"}


def test_queues_are_applied_after_kueue_is_serving(training_app: SynthesizedApp) -> None:
    raw = resources(training_app.template(training_app.platform.cluster), "Custom::AWSCDK-EKS-KubernetesResource")
    (queues,) = [m for k, m in raw.items() if k.startswith("ClustermanifestKueueQueues")]
    assert any(d.startswith("ClusterchartKueue") for d in queues["DependsOn"])


def test_one_runtime_and_hugepages_overlay_per_efa_training_pool(training_app: SynthesizedApp) -> None:
    runtimes = objects(training_app, "ClusterTrainingRuntime")
    assert set(runtimes) == {"neuronx-trn1-efa", "neuronx-trn1n-efa"}
    overlays = objects(training_app, "NodeOverlay")
    assert set(overlays) == {"trn1-efa-hugepages", "trn1n-efa-hugepages"}
    assert overlays["trn1-efa-hugepages"]["spec"]["capacity"] == {"hugepages-2Mi": "5120Mi"}


@pytest.mark.parametrize(("runtime", "efa"), [("neuronx-trn1-efa", "8"), ("neuronx-trn1n-efa", "16")])
def test_runtime_requests_the_whole_node(training_app: SynthesizedApp, runtime: str, efa: str) -> None:
    spec = objects(training_app, "ClusterTrainingRuntime")[runtime]["spec"]
    pod = spec["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["aws.amazon.com/neuron"] == "16"
    assert container["resources"]["limits"]["vpc.amazonaws.com/efa"] == efa
    assert container["resources"]["limits"]["hugepages-2Mi"] == "5120Mi"
    assert pod["schedulerName"] == "my-scheduler"
    assert pod["nodeSelector"] == {"neuron-platform/pool": runtime.removeprefix("neuronx-")}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["FI_PROVIDER"] == "efa"
    assert env["NEURON_COMPILE_CACHE_URL"] == "s3://trn-train-neuron-cache/compile-cache"


def test_runtimes_wait_for_the_trainer_and_karpenter(training_app: SynthesizedApp) -> None:
    raw = resources(training_app.template(training_app.platform.cluster), "Custom::AWSCDK-EKS-KubernetesResource")
    training = [m for k, m in raw.items() if k.startswith("ClustermanifestTrainingtrn")]
    assert len(training) == 2
    for manifest in training:
        assert any(d.startswith("ClusterchartKubeflowTrainer") for d in manifest["DependsOn"])
        assert any(d.startswith("ClusterchartKarpenter") and "Crds" not in d for d in manifest["DependsOn"])


def test_training_pods_get_scoped_compile_cache_access(training_app: SynthesizedApp) -> None:
    associations = resources(training_app.template(training_app.platform.cluster), "AWS::EKS::PodIdentityAssociation")
    assert ("training", "neuron-training") in {
        (props(a)["Namespace"], props(a)["ServiceAccount"]) for a in associations.values()
    }
    policies = resources(training_app.template(training_app.platform.cluster), "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("TrainingRoleDefaultPolicy")]
    statements = props(policy)["PolicyDocument"]["Statement"]
    objects_statement = next(s for s in statements if "s3:PutObject" in s["Action"])
    # The prefix is a folder: compile-cache/*, never compile-cache* (which matches compile-cache-other/...).
    assert objects_statement["Resource"] == "arn:aws:s3:::trn-train-neuron-cache/compile-cache/*"
    list_statement = next(s for s in statements if s["Action"] == "s3:ListBucket")
    assert list_statement["Condition"]["StringLike"] == {"s3:prefix": ["compile-cache/*"]}
    runtime = objects(training_app, "ClusterTrainingRuntime")["neuronx-trn1-efa"]["spec"]
    pod = runtime["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "neuron-training"


# --- shared training storage ---------------------------------------------------------


def test_file_system_sits_in_the_efa_pools_zone(training_app: SynthesizedApp) -> None:
    _, fs = only(training_app, "AWS::FSx::FileSystem")
    assert props(fs)["LustreConfiguration"]["DeploymentType"] == "PERSISTENT_2"
    assert props(fs)["StorageCapacity"] == 2400
    assert training_app.config.training_zone == "us-east-1a"
    network = training_app.platform.network
    subnet = network.network.private_subnet_in("us-east-1a")
    assert subnet.availability_zone == "us-east-1a"
    # The subnet id crosses stacks as an output of the network stack.
    outputs = training_app.template_json(network)["Outputs"]
    (output,) = [k for k, v in outputs.items() if v["Value"] == network.resolve(subnet.subnet_id)]
    (subnet_id,) = props(fs)["SubnetIds"]
    assert subnet_id["Fn::GetStackOutput"]["OutputName"] == output


def test_lustre_reachable_from_cluster_nodes_only(training_app: SynthesizedApp) -> None:
    stack_json = cluster_json(training_app)
    (cluster_id,) = [k for k, v in stack_json["Resources"].items() if v["Type"] == "AWS::EKS::Cluster"]
    groups = resources(training_app.template(training_app.platform.cluster), "AWS::EC2::SecurityGroup")
    ((group_id, group),) = [(k, g) for k, g in groups.items() if "FSx for Lustre" in props(g)["GroupDescription"]]
    # Rules as their own resources, never inline: an inline rule naming the cluster's group
    # would make the group, and so the file system, wait for the cluster (issue 16).
    assert "SecurityGroupIngress" not in props(group)
    ingress = resources(training_app.template(training_app.platform.cluster), "AWS::EC2::SecurityGroupIngress")
    own = {"Fn::GetAtt": [group_id, "GroupId"]}
    rules = [props(r) for r in ingress.values() if props(r)["GroupId"] == own]
    node_group = {"Fn::GetAtt": [cluster_id, "ClusterSecurityGroupId"]}
    sources = {(r["FromPort"], r["ToPort"]): r["SourceSecurityGroupId"] for r in rules}
    # From the nodes: the Lustre ports only; between file servers: LustreFileSystem's own rule.
    assert sources == {(988, 988): node_group, (1018, 1023): node_group, (988, 1023): own}
    assert all(r["IpProtocol"] == "tcp" for r in rules)
    assert "SecurityGroupEgress" not in props(group)  # no outbound beyond the self rules


def test_data_repository_and_created_bucket_are_retained(training_app: SynthesizedApp) -> None:
    t = training_app.template(training_app.platform.cluster)
    (dra,) = resources(t, "AWS::FSx::DataRepositoryAssociation").values()
    assert props(dra)["FileSystemPath"] == "/data"
    assert json.dumps(props(dra)["DataRepositoryPath"]).endswith('"/datasets/"]]}')
    for type_name in ("AWS::FSx::FileSystem", "AWS::S3::Bucket"):
        assert all(r["DeletionPolicy"] == "Retain" for r in resources(t, type_name).values())


def test_csi_driver_volume_and_claim_mounted_by_every_runtime(training_app: SynthesizedApp) -> None:
    chart = helm_charts(cluster_json(training_app))["aws-fsx-csi-driver"]
    assert chart["Version"] == versions.FSX_CSI_DRIVER_CHART.version
    assert chart["Repository"] == versions.FSX_CSI_DRIVER_CHART.repository
    assert chart["Values"]["node"]["tolerateAllTaints"] is True
    (volume,) = objects(training_app, "PersistentVolume").values()
    assert volume["spec"]["csi"]["driver"] == "fsx.csi.aws.com"
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    zones = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
    assert zones == ["us-east-1a"]
    (claim,) = objects(training_app, "PersistentVolumeClaim").values()
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    for runtime in objects(training_app, "ClusterTrainingRuntime").values():
        pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert claims == [claim["metadata"]["name"]]
        assert {"name": "fsx", "mountPath": "/fsx"} in pod["containers"][0]["volumeMounts"]


def test_no_file_system_unless_shared_storage_is_enabled(synthesized: dict[str, SynthesizedApp]) -> None:
    for name, app in synthesized.items():
        t = app.template(app.platform.cluster)
        enabled = app.config.training.shared_storage.enabled
        assert bool(resources(t, "AWS::FSx::FileSystem")) == enabled, name
        assert ("aws-fsx-csi-driver" in helm_charts(cluster_json(app))) == enabled, name


def test_pools_of_one_cluster_run_different_amis_where_their_runtimes_differ(
    existing_vpc_app: SynthesizedApp,
) -> None:
    """trn2 training runs the SDK 2.30 training image (runtime 2.32, which driver 2.29 breaks);
    trn2 serving the SDK 2.32 vLLM image (runtime 2.34, fine on 2.29): one cluster, two AMIs."""
    aliases = {}
    for name, node_class in objects(existing_vpc_app, "EC2NodeClass").items():
        (term,) = node_class["spec"]["amiSelectorTerms"]
        assert term["alias"] == existing_vpc_app.config.pool_stack(name).ami_alias
        aliases[name] = term["alias"]
    assert aliases == {"trn2-efa": "al2023@v20260625", "trn2-serving": "al2023@v20260714"}
