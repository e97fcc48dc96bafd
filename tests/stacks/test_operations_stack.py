"""Fine-grained assertions on the operations stack: alarms, their actions, the budget, the dashboard."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import SynthesizedApp
from tests.helpers import props, resources


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def ops_resources(app: SynthesizedApp, type_name: str) -> dict[str, dict[str, Any]]:
    assert app.platform.operations is not None
    return resources(app.template(app.platform.operations), type_name)


def alarms(app: SynthesizedApp) -> dict[str, dict[str, Any]]:
    return {props(a)["AlarmName"]: props(a) for a in ops_resources(app, "AWS::CloudWatch::Alarm").values()}


def topic_id(app: SynthesizedApp) -> str:
    (logical_id,) = ops_resources(app, "AWS::SNS::Topic")
    return logical_id


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(inference_app: SynthesizedApp) -> None:
    found = alarms(inference_app)
    assert set(found) == {"inf-small-InterruptionBacklog", "inf-small-CompileFailures", "inf-small-llama3-8b-sm-5xx"}
    topic = {"Ref": topic_id(inference_app)}
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["OKActions"] == [topic], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmDescription"], name


def test_interruption_backlog_alarm(inference_app: SynthesizedApp) -> None:
    alarm = alarms(inference_app)["inf-small-InterruptionBacklog"]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["Period"]) == (10, 3, 300)


def test_compile_failure_alarm(inference_app: SynthesizedApp) -> None:
    alarm = alarms(inference_app)["inf-small-CompileFailures"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_endpoint_5xx_alarm(inference_app: SynthesizedApp) -> None:
    alarm = alarms(inference_app)["inf-small-llama3-8b-sm-5xx"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SageMaker", "Invocation5XXErrors")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions == {"EndpointName": "inf-small-llama3-8b-sm", "VariantName": "main"}
    assert alarm["Threshold"] == 5


def test_budget_on_the_project_tag_alerts_actual_and_forecast(inference_app: SynthesizedApp) -> None:
    (budget,) = ops_resources(inference_app, "AWS::Budgets::Budget").values()
    data = props(budget)["Budget"]
    assert data["BudgetLimit"] == {"Amount": 30000, "Unit": "USD"}
    assert (data["BudgetType"], data["TimeUnit"]) == ("COST", "MONTHLY")
    assert data["CostFilters"] == {"TagKeyValue": ["user:neuron-platform:project$inf-small"]}
    notifications = {n["Notification"]["NotificationType"]: n for n in props(budget)["NotificationsWithSubscribers"]}
    assert notifications["ACTUAL"]["Notification"]["Threshold"] == 80
    assert notifications["FORECASTED"]["Notification"]["Threshold"] == 100
    for notification in notifications.values():
        assert notification["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": topic_id(inference_app)}}]


def test_topic_is_encrypted_and_budgets_may_publish(inference_app: SynthesizedApp) -> None:
    (topic,) = ops_resources(inference_app, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in props(topic)
    (policy,) = ops_resources(inference_app, "AWS::SNS::TopicPolicy").values()
    statements = props(policy)["PolicyDocument"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "budgets.amazonaws.com"} and s["Action"] == "sns:Publish" for s in statements
    )
    key_id = props(topic)["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = ops_resources(inference_app, "AWS::KMS::Key")[key_id]
    key_statements = props(key)["KeyPolicy"]["Statement"]
    publishers = sorted(
        service
        for s in key_statements
        for service in _as_list(s.get("Principal", {}).get("Service", []))
        if s["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    )
    # CloudWatch alarms, AWS Budgets and the Prometheus alert manager publish.
    assert publishers == ["aps.amazonaws.com", "budgets.amazonaws.com", "cloudwatch.amazonaws.com"]
    (subscription,) = ops_resources(inference_app, "AWS::SNS::Subscription").values()
    assert props(subscription)["Endpoint"] == "oncall@example.com"


def test_dashboard_widgets(inference_app: SynthesizedApp) -> None:
    (dashboard,) = ops_resources(inference_app, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(props(dashboard)["DashboardBody"])
    for title in (
        "Alarms",
        "Karpenter interruption queue (messages waiting)",
        "Capacity events by kind",
        "Compile runs",
        "Compile run duration (ms)",
        "inf-small-llama3-8b-sm: model latency (microseconds)",
        "inf-small-llama3-8b-sm: invocations",
        "inf-small-llama3-8b-sm: errors",
        "llama3-8b: response time (s)",
        "llama3-8b: requests",
        "llama3-8b: errors",
    ):
        assert title in body, title
    for rule in ("SpotInterruption", "ScheduledChange", "CapacityReservationInterruption"):
        assert rule in body, rule
    assert props(dashboard)["DashboardName"] == "inf-small-operations"
    # EKS endpoints: the metrics of the ALB the controller names after the endpoint.
    assert "SEARCH(" in body
    assert "app/inf-small-llama3-8b/" in body


def test_no_operations_stack_unless_enabled(synthesized: dict[str, SynthesizedApp]) -> None:
    for name, app in synthesized.items():
        assert (app.platform.operations is not None) == app.config.operations.enabled, name


def test_topic_admits_the_prometheus_alert_manager(inference_app: SynthesizedApp) -> None:
    (topic,) = ops_resources(inference_app, "AWS::SNS::Topic").values()
    assert props(topic)["TopicName"] == "inf-small-alarms"  # the cluster stack's alert manager targets this name
    (policy,) = ops_resources(inference_app, "AWS::SNS::TopicPolicy").values()
    (aps,) = [
        s
        for s in props(policy)["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "aps.amazonaws.com"}
    ]
    assert sorted(aps["Action"]) == ["sns:GetTopicAttributes", "sns:Publish"]
    assert "aws:SourceAccount" in aps["Condition"]["StringEquals"]


def test_training_fleet_gets_the_capacity_alarm_budget_and_metrics(training_app: SynthesizedApp) -> None:
    # No compile pipeline or endpoints here: only what a training fleet has.
    assert set(alarms(training_app)) == {"trn-train-InterruptionBacklog"}
    (budget,) = ops_resources(training_app, "AWS::Budgets::Budget").values()
    assert props(budget)["Budget"]["BudgetLimit"] == {"Amount": 250000, "Unit": "USD"}
    assert props(budget)["Budget"]["CostFilters"] == {"TagKeyValue": ["user:neuron-platform:project$trn-train"]}
    # The cluster's workspace alerts to this topic; no EKS endpoints, so no KEDA.
    cluster = training_app.template(training_app.platform.cluster)
    assert resources(cluster, "AWS::APS::Workspace")
    (rules,) = resources(cluster, "AWS::APS::RuleGroupsNamespace").values()
    assert "for: 30m" in props(rules)["Data"]  # idle_core_minutes: 30
    (topic,) = ops_resources(training_app, "AWS::SNS::Topic").values()
    assert props(topic)["TopicName"] == "trn-train-alarms"
