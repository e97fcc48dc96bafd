"""NeuronMetrics reused on its own: literal names, no alarm topic, cdk-nag clean."""

from __future__ import annotations

import aws_cdk as cdk
import yaml
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from neuron_platform.operations.neuron_metrics import NeuronMetrics
from neuron_platform.operations.prometheus_config import AlertThresholds
from tests.conftest import new_app
from tests.helpers import props, resources


def build(**kwargs: object) -> Template:
    app = new_app()
    stack = cdk.Stack(app, "Reuser", env=cdk.Environment(account="111122223333", region="eu-west-1"))
    NeuronMetrics(
        stack,
        "Metrics",
        project="team-a",
        cluster_name="team-a",
        cluster_arn="arn:aws:eks:eu-west-1:111122223333:cluster/team-a",
        subnet_ids=["subnet-0aaa", "subnet-0bbb"],
        security_group_id="sg-0ccc",
        **kwargs,  # type: ignore[arg-type]
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises on any unacknowledged cdk-nag finding
    return Template.from_stack(stack)


def test_without_an_alarm_topic_the_rules_run_but_nothing_is_routed() -> None:
    template = build()
    (workspace,) = resources(template, "AWS::APS::Workspace").values()
    assert "AlertManagerDefinition" not in props(workspace)
    assert resources(template, "AWS::APS::RuleGroupsNamespace")


def test_literal_cluster_name_is_encoded_by_cloudformation_as_plain_yaml() -> None:
    template = build(scrape_interval_seconds=30, thresholds=AlertThresholds(pending_pod_minutes=5))
    (scraper,) = resources(template, "AWS::APS::Scraper").values()
    config = yaml.safe_load(props(scraper)["ScrapeConfiguration"]["ConfigurationBlob"]["Fn::Base64"])
    assert config["global"] == {"scrape_interval": "30s", "external_labels": {"cluster": "team-a"}}
    assert props(scraper)["Source"]["EksConfiguration"]["SubnetIds"] == ["subnet-0aaa", "subnet-0bbb"]
    (rules,) = resources(template, "AWS::APS::RuleGroupsNamespace").values()
    assert "> 300" in props(rules)["Data"]


def test_alarm_topic_arn_is_routed_as_given() -> None:
    arn = "arn:aws:sns:eu-west-1:111122223333:team-a-alarms"
    (workspace,) = resources(build(alarm_topic_arn=arn), "AWS::APS::Workspace").values()
    config = yaml.safe_load(yaml.safe_load(props(workspace)["AlertManagerDefinition"])["alertmanager_config"])
    assert config["receivers"][0]["sns_configs"][0]["topic_arn"] == arn
