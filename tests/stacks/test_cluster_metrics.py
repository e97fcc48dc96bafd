"""The cluster's metrics pipeline: Prometheus workspace, managed collector, alert rules, KEDA."""

from __future__ import annotations

import json
from typing import Any

import yaml

from neuron_platform import versions
from tests.conftest import SynthesizedApp
from tests.helpers import helm_charts, manifests, manifests_by_name, props, resources


def cluster_resources(app: SynthesizedApp, type_name: str) -> dict[str, dict[str, Any]]:
    return resources(app.template(app.platform.cluster), type_name)


def one(app: SynthesizedApp, type_name: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = cluster_resources(app, type_name).items()
    return logical_id, props(resource)


def joined(value: dict[str, Any], stand_in: str) -> str:
    """An Fn::Join's text with every intrinsic replaced by ``stand_in``."""
    separator, parts = value["Fn::Join"]
    return separator.join(p if isinstance(p, str) else stand_in for p in parts)


def test_metrics_workspace_logs_to_a_retained_encrypted_group(inference_app: SynthesizedApp) -> None:
    workspace_id, workspace = one(inference_app, "AWS::APS::Workspace")
    assert workspace["Alias"] == "inf-small-metrics"
    # AMP's own encryption: a workspace with a customer managed key takes no managed collector.
    assert "KmsKeyArn" not in workspace
    log_group_id = workspace["LoggingConfiguration"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = cluster_resources(inference_app, "AWS::Logs::LogGroup")[log_group_id]
    assert props(group)["LogGroupName"] == "/aws/vendedlogs/prometheus/inf-small"
    key_id = props(group)["KmsKeyId"]["Fn::GetAtt"][0]
    assert props(cluster_resources(inference_app, "AWS::KMS::Key")[key_id])["EnableKeyRotation"] is True
    assert group["DeletionPolicy"] == "Retain"
    assert cluster_resources(inference_app, "AWS::APS::Workspace")[workspace_id]["DeletionPolicy"] == "Retain"


def test_alert_manager_routes_every_alert_to_the_alarm_topic_by_name(inference_app: SynthesizedApp) -> None:
    _, workspace = one(inference_app, "AWS::APS::Workspace")
    text = joined(workspace["AlertManagerDefinition"], "111122223333")
    config = yaml.safe_load(yaml.safe_load(text)["alertmanager_config"])
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    (sns_config,) = receiver["sns_configs"]
    # The operations stack names its topic so; no cross-stack reference back to it.
    assert sns_config["topic_arn"] == "arn:aws:sns:us-west-2:111122223333:inf-small-alarms"
    assert sns_config["sigv4"] == {"region": "us-west-2"}
    assert sns_config["send_resolved"] is True


def test_collector_scrapes_the_cluster_from_private_subnets_into_the_workspace(inference_app: SynthesizedApp) -> None:
    workspace_id, _ = one(inference_app, "AWS::APS::Workspace")
    _, scraper = one(inference_app, "AWS::APS::Scraper")
    assert scraper["Destination"]["AmpConfiguration"]["WorkspaceArn"] == {"Fn::GetAtt": [workspace_id, "Arn"]}
    source = scraper["Source"]["EksConfiguration"]
    assert source["SecurityGroupIds"] == [{"Fn::GetAtt": ["ClusterC2E21B66", "ClusterSecurityGroupId"]}]
    assert source["ClusterArn"] == {"Fn::GetAtt": ["ClusterC2E21B66", "Arn"]}
    assert len(source["SubnetIds"]) == 2
    assert all("privateSubnet" in json.dumps(s) for s in source["SubnetIds"])
    # The cluster name is a reference, so CloudFormation does the base64 encoding.
    blob = scraper["ScrapeConfiguration"]["ConfigurationBlob"]["Fn::Base64"]
    assert {"Ref": "ClusterC2E21B66"} in blob["Fn::Join"][1]
    config = yaml.safe_load(joined(blob, "inf-small"))
    assert config["global"] == {"scrape_interval": "60s", "external_labels": {"cluster": "inf-small"}}
    assert [job["job_name"] for job in config["scrape_configs"]] == [
        "neuron-monitor",
        "node-problem-detector",
        "karpenter",
        "vllm",
        "kube-scheduler",
    ]


def test_collector_identity_is_mapped_without_the_role_path(inference_app: SynthesizedApp) -> None:
    scraper_id, _ = one(inference_app, "AWS::APS::Scraper")
    (entry,) = [
        props(e) for e in cluster_resources(inference_app, "AWS::EKS::AccessEntry").values() if "Username" in props(e)
    ]
    assert entry["Username"] == "aps-collector-user"
    assert entry["Type"] == "STANDARD"
    assert "AccessPolicies" not in entry  # the RBAC below grants read-only access, nothing more
    role_arn = {"Fn::GetAtt": [scraper_id, "RoleArn"]}
    assert entry["PrincipalArn"] == {
        "Fn::Join": [
            "/",
            [
                {"Fn::Select": [0, {"Fn::Split": ["/", role_arn]}]},
                {"Fn::Select": [3, {"Fn::Split": ["/", role_arn]}]},
            ],
        ]
    }


def test_collector_rbac_is_read_only(inference_app: SynthesizedApp) -> None:
    objs = manifests_by_name(inference_app.template_json(inference_app.platform.cluster))
    role = objs[("ClusterRole", "aps-collector-role")]
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    binding = objs[("ClusterRoleBinding", "aps-collector-role-binding")]
    assert binding["subjects"] == [
        {"kind": "User", "name": "aps-collector-user", "apiGroup": "rbac.authorization.k8s.io"}
    ]


def test_alert_rules_carry_the_configured_thresholds(inference_app: SynthesizedApp) -> None:
    workspace_id, _ = one(inference_app, "AWS::APS::Workspace")
    _, namespace = one(inference_app, "AWS::APS::RuleGroupsNamespace")
    assert namespace["Workspace"] == {"Fn::GetAtt": [workspace_id, "Arn"]}
    (group,) = yaml.safe_load(namespace["Data"])["groups"]
    rules = {r["alert"]: r for r in group["rules"]}
    assert set(rules) == {
        "NeuronUncorrectableMemoryErrors",
        "NeuronHealthCondition",
        "NeuronExecutionErrors",
        "NeuronCoresIdle",
        "EndpointServerErrors",
        "PodsPendingTooLong",
        "KarpenterCloudProviderErrors",
    }
    # inference-small sets pending_pod_minutes: 20 and idle_core_minutes: 30.
    assert rules["PodsPendingTooLong"]["expr"].endswith("> 1200")
    assert rules["NeuronCoresIdle"]["for"] == "30m"
    assert rules["EndpointServerErrors"]["expr"].endswith(">= 5")  # operations.endpoint_5xx_per_5_minutes
    assert rules["NeuronUncorrectableMemoryErrors"]["labels"]["severity"] == "critical"
    for rule in rules.values():
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["action"], rule["alert"]


def test_keda_is_pinned_and_reads_only_the_workspace(inference_app: SynthesizedApp) -> None:
    charts = helm_charts(inference_app.template_json(inference_app.platform.cluster))
    keda = charts["keda"]
    assert (keda["Chart"], keda["Repository"], keda["Version"]) == (
        versions.KEDA_CHART.chart,
        versions.KEDA_CHART.repository,
        versions.KEDA_CHART.version,
    )
    assert keda["Namespace"] == "keda"
    assert keda["Values"]["nodeSelector"]["neuron-platform/role"] == "system"
    (association,) = [
        props(a)
        for a in cluster_resources(inference_app, "AWS::EKS::PodIdentityAssociation").values()
        if props(a)["Namespace"] == "keda"
    ]
    assert association["ServiceAccount"] == "keda-operator"
    role_id = association["RoleArn"]["Fn::GetAtt"][0]
    workspace_id, _ = one(inference_app, "AWS::APS::Workspace")
    statements = [
        s
        for p in cluster_resources(inference_app, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in props(p)["Roles"]
        for s in props(p)["PolicyDocument"]["Statement"]
    ]
    (statement,) = statements
    assert statement["Resource"] == {"Fn::GetAtt": [workspace_id, "Arn"]}
    assert all(action.startswith("aps:") and "Write" not in action for action in statement["Action"])
    objs = manifests_by_name(inference_app.template_json(inference_app.platform.cluster))
    # No cluster-wide authentication: serving namespaces hold their own TriggerAuthentication.
    assert not [k for k in objs if k[0] == "ClusterTriggerAuthentication"]


def test_metrics_only_where_operations_or_eks_endpoints_need_them(synthesized: dict[str, SynthesizedApp]) -> None:
    for app in synthesized.values():
        workspaces = cluster_resources(app, "AWS::APS::Workspace")
        assert bool(workspaces) == app.config.collects_metrics, app.name
        has_keda = "keda" in helm_charts(app.template_json(app.platform.cluster))
        assert has_keda == (app.config.collects_metrics and bool(app.config.eks_endpoints)), app.name
        kinds = {
            (obj["kind"], obj["metadata"]["name"])
            for obj in manifests(app.template_json(app.platform.cluster))
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding")
        }
        expected = (
            {("ClusterRole", "aps-collector-role"), ("ClusterRoleBinding", "aps-collector-role-binding")}
            if app.config.collects_metrics
            else set()
        )
        assert kinds == expected, app.name
