"""Alarms and the cost guard of one platform, all publishing to one encrypted SNS topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from constructs import Construct


@dataclass(frozen=True)
class SageMakerVariant:
    endpoint_name: str
    variant_name: str


def interruption_backlog_metric(queue: sqs.IQueue) -> cloudwatch.Metric:
    return queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum")


def compile_failures_metric(state_machine: sfn.IStateMachine) -> cloudwatch.Metric:
    return state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum")


def endpoint_5xx_metric(variant: SageMakerVariant) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/SageMaker",
        metric_name="Invocation5XXErrors",
        dimensions_map={"EndpointName": variant.endpoint_name, "VariantName": variant.variant_name},
        period=Duration.minutes(5),
        statistic="Sum",
    )


def alarm_topic_name(project: str) -> str:
    return f"{project}-alarms"


def alarm_topic_arn(scope: Construct, project: str) -> str:
    """The alarm topic's ARN, known before the topic exists (its name is fixed)."""
    return Stack.of(scope).format_arn(service="sns", resource=alarm_topic_name(project))


class PlatformAlarms(Construct):
    """One SNS topic (KMS, CloudWatch and AWS Budgets may publish) and the alarms on it:

    - ``InterruptionBacklog``: the Karpenter interruption queue keeps messages for 15
      minutes, so Karpenter is not draining them and nodes may go without a drain;
    - ``CompileFailures``: a compile pipeline run failed;
    - ``<endpoint>-5xx``: a SageMaker endpoint answers with server errors;
    - a monthly AWS Budget on the project's cost-allocation tag (actual and forecast).

    The topic is named ``<project>-alarms`` (:func:`alarm_topic_arn`); with
    ``prometheus_alerts`` its key and policy also admit the Prometheus alert manager.

    Missing data is "not breaching": an idle platform is quiet.

    Example::

        PlatformAlarms(self, "Alarms", project="neuron", emails=["oncall@example.com"],
                       interruption_queue=karpenter.queue, monthly_budget_usd=20000)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: str,
        project_tag: str,
        emails: Sequence[str] = (),
        interruption_queue: sqs.IQueue | None = None,
        interruption_backlog: int = 10,
        compile_state_machine: sfn.IStateMachine | None = None,
        sagemaker_variants: Sequence[SageMakerVariant] = (),
        endpoint_5xx_per_5_minutes: int = 5,
        monthly_budget_usd: int | None = None,
        budget_alert_percent: int = 80,
        prometheus_alerts: bool = False,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"Encrypts the alarm topic of {project}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        publishers = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
        if prometheus_alerts:
            publishers.append("aps.amazonaws.com")
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(p) for p in publishers],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=alarm_topic_name(project),
            display_name=f"{project} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        # CloudWatch publishes through the alarm actions; the other services need the policy.
        topic_publishers = {"budgets.amazonaws.com": ["sns:Publish"]}
        if prometheus_alerts:
            topic_publishers["aps.amazonaws.com"] = ["sns:Publish", "sns:GetTopicAttributes"]
        for service, topic_actions in topic_publishers.items():
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal(service)],
                    actions=topic_actions,
                    resources=[self.topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                )
            )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        action = actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(name: str, metric: cloudwatch.Metric, threshold: float, periods: int, description: str) -> None:
            """``name`` is the alarm's name, prefixed with the project unless it already is."""
            full_name = name if name.startswith(f"{project}-") else f"{project}-{name}"
            created = cloudwatch.Alarm(
                self,
                full_name,
                alarm_name=full_name,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(action)
            created.add_ok_action(action)
            self.alarms[full_name] = created

        if interruption_queue is not None:
            alarm(
                "InterruptionBacklog",
                interruption_backlog_metric(interruption_queue),
                interruption_backlog,
                3,
                "Karpenter's interruption queue has kept messages for 15 minutes: check the controller's logs "
                "(kubectl logs -n kube-system deploy/karpenter) before spot or maintenance events hit undrained nodes.",
            )
        if compile_state_machine is not None:
            alarm(
                "CompileFailures",
                compile_failures_metric(compile_state_machine),
                1,
                1,
                "A compile pipeline run failed: 'python -m neuron_platform compile status <execution>' shows why; "
                "the pipeline's own topic carries the error and cause.",
            )
        for variant in sagemaker_variants:
            alarm(
                f"{variant.endpoint_name}-5xx",
                endpoint_5xx_metric(variant),
                endpoint_5xx_per_5_minutes,
                1,
                f"SageMaker endpoint {variant.endpoint_name} answers with server errors: see its CloudWatch log "
                f"group /aws/sagemaker/Endpoints/{variant.endpoint_name}.",
            )

        self.budget: budgets.CfnBudget | None = None
        if monthly_budget_usd is not None:
            subscriber = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=self.topic.topic_arn)]
            self.budget = budgets.CfnBudget(
                self,
                "Budget",
                budget=budgets.CfnBudget.BudgetDataProperty(
                    budget_name=f"{project}-monthly",
                    budget_type="COST",
                    time_unit="MONTHLY",
                    budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_budget_usd, unit="USD"),
                    # Cost-allocation tags appear as user:<key>$<value> once activated in Billing.
                    cost_filters={"TagKeyValue": [f"user:{project_tag}${project}"]},
                ),
                notifications_with_subscribers=[
                    budgets.CfnBudget.NotificationWithSubscribersProperty(
                        notification=budgets.CfnBudget.NotificationProperty(
                            notification_type="ACTUAL",
                            comparison_operator="GREATER_THAN",
                            threshold=budget_alert_percent,
                            threshold_type="PERCENTAGE",
                        ),
                        subscribers=subscriber,
                    ),
                    budgets.CfnBudget.NotificationWithSubscribersProperty(
                        notification=budgets.CfnBudget.NotificationProperty(
                            notification_type="FORECASTED",
                            comparison_operator="GREATER_THAN",
                            threshold=100,
                            threshold_type="PERCENTAGE",
                        ),
                        subscribers=subscriber,
                    ),
                ],
            )
