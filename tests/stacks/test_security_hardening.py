"""Issue 15, cluster side: who administers the cluster, whom each Pod Identity role trusts,
Pod Security Admission, network policies, and the IAM scoping scanners cannot judge."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from neuron_platform.cluster import NeuronCluster, PodIdentityRole
from neuron_platform.cluster import load_balancer_controller as lbc
from neuron_platform.k8s.pod_security import POD_IDENTITY_AGENT_CIDR, PSA_VERSION
from tests.conftest import SynthesizedApp
from tests.helpers import helm_charts, manifests, props, resources

POD_IDENTITY = "pods.eks.amazonaws.com"
ADMIN_POLICY = {
    "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"]]
}


def cluster_template(app: SynthesizedApp) -> dict[str, Any]:
    return app.template_json(app.platform.cluster)


def objects(app: SynthesizedApp, kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests(cluster_template(app)) if m["kind"] == kind]


def namespaces(app: SynthesizedApp) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in objects(app, "Namespace")}


def policies_in(app: SynthesizedApp, namespace: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in objects(app, "NetworkPolicy") if m["metadata"]["namespace"] == namespace}


def psa(namespace: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = namespace["metadata"]["labels"]
    return {k.split("/")[1]: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}


# --- HIGH 3: cluster administrators ----------------------------------------------------


def test_the_deploying_principal_gets_no_access_entry(default_app: SynthesizedApp) -> None:
    (cluster,) = resources(default_app.template(default_app.platform.cluster), "AWS::EKS::Cluster").values()
    assert props(cluster)["AccessConfig"] == {
        "AuthenticationMode": "API",
        "BootstrapClusterCreatorAdminPermissions": False,
    }


def admin_entries(app: SynthesizedApp) -> list[dict[str, Any]]:
    """Every access entry with an access policy (nodes and the collector have none)."""
    entries = resources(app.template(app.platform.cluster), "AWS::EKS::AccessEntry").values()
    return [props(e) for e in entries if props(e).get("AccessPolicies")]


def test_cluster_admins_are_the_configured_principals_and_the_kubectl_handler(training_app: SynthesizedApp) -> None:
    template = cluster_template(training_app)
    handler_roles = [
        logical
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and "KubectlProviderHandlerServiceRole" in logical
    ]
    (handler_role,) = handler_roles
    principals = []
    for entry in admin_entries(training_app):
        assert [p["PolicyArn"] for p in entry["AccessPolicies"]] == [ADMIN_POLICY]
        assert entry["AccessPolicies"][0]["AccessScope"] == {"Type": "cluster"}
        principals.append(entry["PrincipalArn"])
    assert sorted(map(str, principals)) == sorted(
        map(str, [*training_app.config.cluster.admin_principal_arns, {"Fn::GetAtt": [handler_role, "Arn"]}])
    )


def test_every_kubectl_provider_role_carries_the_permissions_boundary(default_app: SynthesizedApp) -> None:
    template = cluster_template(default_app)
    boundaries = [
        logical
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and "KubectlProviderBoundary" in logical
    ]
    (boundary,) = boundaries
    provider_roles = {
        logical: r
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and "KubectlProvider" in logical
    }
    assert len(provider_roles) == 2  # the handler and the provider framework
    for role in provider_roles.values():
        assert props(role)["PermissionsBoundary"] == {"Ref": boundary}
    statements = props(template["Resources"][boundary])["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    # A ceiling that leaves no way to more IAM: no IAM, STS role, Lambda-management or wildcard actions.
    assert not {a for a in actions if a.startswith(("iam:", "lambda:Create", "lambda:Update")) or "*" in a}
    assert "sts:AssumeRole" not in actions
    assert {s["Effect"] for s in statements} == {"Allow"}


# --- MEDIUM 4: Pod Identity trust ------------------------------------------------------


def pod_identity_roles(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        statements = props(resource)["AssumeRolePolicyDocument"]["Statement"]
        if any(s.get("Principal", {}).get("Service") == POD_IDENTITY for s in statements):
            out[logical] = resource
    return out


def trusted(role: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for statement in props(role)["AssumeRolePolicyDocument"]["Statement"]:
        assert statement["Principal"] == {"Service": POD_IDENTITY}
        assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
        equals = statement["Condition"]["StringEquals"]
        assert set(equals) == {
            "aws:RequestTag/eks-cluster-arn",
            "aws:RequestTag/kubernetes-namespace",
            "aws:RequestTag/kubernetes-service-account",
        }
        out.append((equals["aws:RequestTag/kubernetes-namespace"], equals["aws:RequestTag/kubernetes-service-account"]))
    return out


@pytest.mark.parametrize("config", ["default", "training-multinode", "inference-small", "existing-vpc"])
def test_every_pod_identity_role_trusts_exactly_its_association(
    synthesized: dict[str, SynthesizedApp], config: str
) -> None:
    app = synthesized[config]
    for stack in app.platform.stacks:
        template = app.template_json(stack)
        roles = pod_identity_roles(template)
        associated: dict[str, list[tuple[str, str]]] = {}
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::EKS::PodIdentityAssociation":
                p = props(resource)
                associated.setdefault(p["RoleArn"]["Fn::GetAtt"][0], []).append((p["Namespace"], p["ServiceAccount"]))
            if resource["Type"] == "AWS::EKS::Addon":
                for a in props(resource).get("PodIdentityAssociations", []):
                    associated.setdefault(a["RoleArn"]["Fn::GetAtt"][0], []).append(
                        ("kube-system", a["ServiceAccount"])
                    )
        assert set(associated) == set(roles), stack.stack_name
        for logical, role in roles.items():
            assert sorted(trusted(role)) == sorted(associated[logical]), logical


def test_the_trust_names_this_clusters_arn(default_app: SynthesizedApp) -> None:
    template = cluster_template(default_app)
    (cluster_id,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::EKS::Cluster"]
    for role in pod_identity_roles(template).values():
        for statement in props(role)["AssumeRolePolicyDocument"]["Statement"]:
            arn = statement["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-arn"]
            # This account, this region, this cluster (by name, or by a Ref to it): another
            # cluster's (or account's) pods get nothing.
            prefix = ["arn:aws:eks:us-east-1:", {"Ref": "AWS::AccountId"}]
            assert arn in (
                {"Fn::Join": ["", [*prefix, ":cluster/neuron"]]},
                {"Fn::Join": ["", [*prefix, ":cluster/", {"Ref": cluster_id}]]},
            )


def test_a_pod_identity_role_bound_to_nothing_fails_synthesis() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "S")
    PodIdentityRole(stack, "Loose", description="never associated")
    with pytest.raises(Exception, match="bound to no service account"):
        app.synth()


def test_training_runs_in_its_own_namespace(training_app: SynthesizedApp) -> None:
    assert training_app.config.training.namespace == "training"
    (association,) = [
        props(r)
        for r in cluster_template(training_app)["Resources"].values()
        if r["Type"] == "AWS::EKS::PodIdentityAssociation" and props(r)["ServiceAccount"] == "neuron-training"
    ]
    assert association["Namespace"] == "training"


# --- MEDIUM 5: Pod Security Admission, security contexts, tokens -------------------------


def test_training_namespace_enforces_baseline_and_warns_at_restricted(training_app: SynthesizedApp) -> None:
    assert psa(namespaces(training_app)["training"]) == {
        "enforce": "baseline",
        "enforce-version": PSA_VERSION,
        "warn": "restricted",
        "warn-version": PSA_VERSION,
        "audit": "restricted",
        "audit-version": PSA_VERSION,
    }


@pytest.mark.parametrize("name", ["kueue-system", "kubeflow-system"])
def test_training_controller_namespaces_enforce_baseline_before_their_charts(
    training_app: SynthesizedApp, name: str
) -> None:
    assert psa(namespaces(training_app)[name])["enforce"] == "baseline"


def test_keda_namespace_enforces_baseline(inference_app: SynthesizedApp) -> None:
    assert psa(namespaces(inference_app)["keda"])["enforce"] == "baseline"


@pytest.mark.parametrize("name", ["neuron-monitor", "neuron-healthcheck-system"])
def test_node_agent_namespaces_admit_privileged_pods_explicitly_and_say_why(
    default_app: SynthesizedApp, name: str
) -> None:
    namespace = namespaces(default_app)[name]
    levels = psa(namespace)
    assert (levels["enforce"], levels["warn"], levels["audit"]) == ("privileged", "baseline", "baseline")
    assert namespace["metadata"]["annotations"]["neuron-platform/pod-security-reason"]


def test_training_runtime_pods_are_hardened(training_app: SynthesizedApp) -> None:
    (runtime, *_) = objects(training_app, "ClusterTrainingRuntime")
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (account,) = [a for a in objects(training_app, "ServiceAccount") if a["metadata"]["name"] == "neuron-training"]
    assert account["automountServiceAccountToken"] is False


def test_neuron_monitor_mounts_no_api_token(default_app: SynthesizedApp) -> None:
    (daemonset,) = [d for d in objects(default_app, "DaemonSet") if d["metadata"]["name"] == "neuron-monitor"]
    assert daemonset["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


# --- MEDIUM 6: network isolation ----------------------------------------------------------


def test_vpc_cni_runs_the_network_policy_agent(default_app: SynthesizedApp) -> None:
    import json

    addons = resources(default_app.template(default_app.platform.cluster), "AWS::EKS::Addon").values()
    (cni,) = [a for a in addons if props(a)["AddonName"] == "vpc-cni"]
    configuration = json.loads(props(cni)["ConfigurationValues"])
    assert configuration["enableNetworkPolicy"] == "true"
    assert configuration["env"]["ENABLE_PREFIX_DELEGATION"] == "true"


def test_training_namespace_denies_by_default_and_allows_what_jobs_need(training_app: SynthesizedApp) -> None:
    policies = policies_in(training_app, "training")
    assert set(policies) == {"default-deny", "allow-dns", "allow-within-namespace", "allow-aws-egress"}
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    within = policies["allow-within-namespace"]["spec"]
    assert within["ingress"] == [{"from": [{"podSelector": {}}]}]  # no port list: every port (rendezvous, bootstrap)
    assert within["egress"] == [{"to": [{"podSelector": {}}]}]
    egress = policies["allow-aws-egress"]["spec"]["egress"]
    assert {
        "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}],
        "ports": [{"protocol": "TCP", "port": 80}],
    } in egress
    assert {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]} in egress
    assert "ingress" not in policies["allow-aws-egress"]["spec"]


def test_the_collector_may_scrape_neuron_monitor_and_nothing_else_gets_in(training_app: SynthesizedApp) -> None:
    policies = policies_in(training_app, "neuron-monitor")
    assert set(policies) == {"default-deny", "allow-metrics-scrape"}
    scrape = policies["allow-metrics-scrape"]["spec"]
    assert scrape["policyTypes"] == ["Ingress"]
    assert scrape["ingress"] == [
        {
            "from": [{"ipBlock": {"cidr": training_app.config.network.vpc_cidr}}],
            "ports": [{"protocol": "TCP", "port": 8000}],
        }
    ]
    npd = policies_in(training_app, "neuron-healthcheck-system")
    assert set(npd) == {"default-deny", "allow-dns", "allow-https-egress", "allow-metrics-scrape"}
    assert npd["allow-metrics-scrape"]["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 20257}]


def test_without_a_collector_nothing_may_reach_the_node_agents(default_app: SynthesizedApp) -> None:
    assert not default_app.config.collects_metrics
    assert set(policies_in(default_app, "neuron-monitor")) == {"default-deny"}
    assert "allow-metrics-scrape" not in policies_in(default_app, "neuron-healthcheck-system")


# --- MEDIUM 7: KEDA's Secret access ---------------------------------------------------------


def test_keda_reads_secrets_of_its_own_namespace_only(inference_app: SynthesizedApp) -> None:
    values = helm_charts(cluster_template(inference_app))["keda"]["Values"]
    assert values["permissions"] == {
        "operator": {"restrict": {"secret": True}},
        "metricServer": {"restrict": {"secret": True}},
    }


# --- MEDIUM 9: load balancer controller security-group statements ---------------------------


def lbc_statements(app: SynthesizedApp) -> list[dict[str, Any]]:
    template = cluster_template(app)
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy" and logical.startswith("LoadBalancerControllerPolicy"):
            statements: list[dict[str, Any]] = props(resource)["PolicyDocument"]["Statement"]
            return statements
    raise AssertionError("no load balancer controller policy")


def actions_of(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_load_balancer_controller_changes_security_groups_of_this_vpc_and_cluster_only(
    default_app: SynthesizedApp,
) -> None:
    statements = lbc_statements(default_app)
    rule_changes = [s for s in statements if actions_of(s) & {"ec2:AuthorizeSecurityGroupIngress"}]
    assert len(rule_changes) == 2
    vpc_id = default_app.platform.cluster.resolve(default_app.platform.network.network.vpc.vpc_id)
    for statement in rule_changes:
        assert statement["Condition"]["ArnEquals"] == {
            "ec2:Vpc": {"Fn::Join": ["", ["arn:aws:ec2:us-east-1:", {"Ref": "AWS::AccountId"}, ":vpc/", vpc_id]]}
        }
    (owned,) = [s for s in rule_changes if "ec2:DeleteSecurityGroup" in actions_of(s)]
    assert owned["Condition"]["StringEquals"] == {"aws:ResourceTag/elbv2.k8s.aws/cluster": "neuron"}
    tagging = [s for s in statements if actions_of(s) & {"ec2:CreateTags"} and "security-group" in str(s["Resource"])]
    assert len(tagging) == 2
    for statement in tagging:
        assert "neuron" in statement["Condition"]["StringEquals"].values()
    (create,) = [s for s in statements if actions_of(s) == {"ec2:CreateSecurityGroup"}]
    assert create["Condition"]["StringEquals"] == {"aws:RequestedRegion": "us-east-1"}


def test_the_vendored_upstream_policy_is_left_as_upstream_ships_it() -> None:
    upstream = lbc.upstream_policy()
    (unconditioned,) = [
        s
        for s in upstream["Statement"]
        if set(s["Action"]) == {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"}
    ]
    assert "Condition" not in unconditioned  # the scoping is ours, applied in code


def test_scoping_refuses_a_policy_without_the_statements_it_scopes() -> None:
    policy = lbc.upstream_policy()
    policy["Statement"] = [s for s in policy["Statement"] if "ec2:CreateSecurityGroup" not in str(s["Action"])]
    with pytest.raises(ValueError, match="create"):
        lbc.scope_security_group_statements(policy, vpc_arn="arn:aws:ec2:r:1:vpc/v", cluster_name="c", region="r")


# --- MEDIUM 11: the compile cache bucket -------------------------------------------------


def test_compile_cache_grant_is_the_prefix_folder_of_a_bucket_of_this_account(training_app: SynthesizedApp) -> None:
    template = cluster_template(training_app)
    statements = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in props(r)["PolicyDocument"]["Statement"]
        if s.get("Sid", "").startswith("CompileCache")
    ]
    by_sid = {s["Sid"]: s for s in statements}
    objects_ = by_sid["CompileCacheObjects"]
    assert objects_["Resource"] == "arn:aws:s3:::trn-train-neuron-cache/compile-cache/*"
    assert objects_["Condition"] == {"StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}}
    listing = by_sid["CompileCacheList"]
    assert listing["Condition"] == {
        "StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}},
        "StringLike": {"s3:prefix": ["compile-cache/*"]},
    }


# --- LOW: interface endpoint policies ----------------------------------------------------------


def test_interface_endpoints_serve_principals_of_this_account_only(default_app: SynthesizedApp) -> None:
    endpoints = resources(default_app.template(default_app.platform.network), "AWS::EC2::VPCEndpoint").values()
    interface = [e for e in endpoints if props(e).get("VpcEndpointType") == "Interface"]
    assert len(interface) == 6
    for endpoint in interface:
        (statement,) = props(endpoint)["PolicyDocument"]["Statement"]
        assert statement["Principal"] == {"AWS": "*"}
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}


def test_a_reusable_cluster_binds_its_addon_roles(tmp_path: Any) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "S", env=cdk.Environment(region="us-east-1"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["us-east-1a", "us-east-1b"])
    cluster = NeuronCluster(stack, "C", cluster_name="c1", vpc=vpc, control_plane_subnets=vpc.private_subnets)
    assert [(b.namespace, b.service_account) for b in cluster.cni_role.bindings] == [("kube-system", "aws-node")]
    assert [(b.namespace, b.service_account) for b in cluster.ebs_csi_role.bindings] == [
        ("kube-system", "ebs-csi-controller-sa")
    ]
