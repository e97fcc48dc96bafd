"""The operations dashboard of one platform (CloudWatch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from constructs import Construct
from neuron_platform.operations.platform_alarms import (
    SageMakerVariant,
    compile_failures_metric,
    endpoint_5xx_metric,
    interruption_backlog_metric,
)

PERIOD = Duration.minutes(5)


def _sagemaker(metric_name: str, variant: SageMakerVariant, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/SageMaker",
        metric_name=metric_name,
        dimensions_map={"EndpointName": variant.endpoint_name, "VariantName": variant.variant_name},
        period=PERIOD,
        statistic=statistic,
    )


def _alb_search(load_balancer: str, metric_name: str, statistic: str, label: str) -> cloudwatch.MathExpression:
    """The metric of the ALB the Load Balancer Controller named ``load_balancer``: its
    dimension value (``app/<name>/<id>``) is only known once the controller created it."""
    return cloudwatch.MathExpression(
        # MetricName="..." matches exactly; LoadBalancer:"..." matches the name's tokens.
        expression=(
            "SEARCH('{AWS/ApplicationELB,LoadBalancer} "
            f'MetricName="{metric_name}" LoadBalancer:"app/{load_balancer}/"'
            f"', '{statistic}', 300)"
        ),
        label=label,
        period=PERIOD,
    )


class PlatformDashboard(Construct):
    """A CloudWatch dashboard: capacity events (Karpenter's interruption queue and the
    EventBridge rules feeding it), compile pipeline runs and duration, and for each
    endpoint its latency, throughput and errors (SageMaker metrics; for EKS endpoints the
    metrics of the ALB in front of them). ``alarms`` are shown as a status row at the top.

    Example::

        PlatformDashboard(self, "Dashboard", project="neuron", interruption_queue=karpenter.queue,
                          interruption_rules=karpenter.rules, compile_state_machine=pipeline.state_machine)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: str,
        interruption_queue: sqs.IQueue | None = None,
        interruption_rules: Mapping[str, events.IRule] | None = None,
        compile_state_machine: sfn.IStateMachine | None = None,
        sagemaker_variants: Sequence[SageMakerVariant] = (),
        eks_load_balancers: Mapping[str, str] | None = None,
        alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{project}-operations")
        if alarms:
            self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24))
        if interruption_queue is not None:
            rule_metrics = [
                cloudwatch.Metric(
                    namespace="AWS/Events",
                    metric_name="Invocations",
                    dimensions_map={"RuleName": rule.rule_name},
                    label=name,
                    period=PERIOD,
                    statistic="Sum",
                )
                for name, rule in (interruption_rules or {}).items()
            ]
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Karpenter interruption queue (messages waiting)",
                    left=[interruption_backlog_metric(interruption_queue)],
                    width=12,
                ),
                cloudwatch.GraphWidget(title="Capacity events by kind", left=rule_metrics, stacked=True, width=12),
            )
        if compile_state_machine is not None:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Compile runs",
                    left=[
                        compile_state_machine.metric_started(period=PERIOD, statistic="Sum", label="started"),
                        compile_state_machine.metric_succeeded(period=PERIOD, statistic="Sum", label="succeeded"),
                        compile_failures_metric(compile_state_machine).with_(label="failed"),
                    ],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="Compile run duration (ms)",
                    left=[compile_state_machine.metric_time(period=Duration.hours(1), statistic="Maximum")],
                    width=12,
                ),
            )
        for variant in sagemaker_variants:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title=f"{variant.endpoint_name}: model latency (microseconds)",
                    left=[
                        _sagemaker("ModelLatency", variant, "p50").with_(label="p50"),
                        _sagemaker("ModelLatency", variant, "p99").with_(label="p99"),
                    ],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{variant.endpoint_name}: invocations",
                    left=[_sagemaker("Invocations", variant, "Sum")],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{variant.endpoint_name}: errors",
                    left=[
                        endpoint_5xx_metric(variant).with_(label="5xx"),
                        _sagemaker("Invocation4XXErrors", variant, "Sum").with_(label="4xx"),
                    ],
                    width=8,
                ),
            )
        for endpoint, load_balancer in sorted((eks_load_balancers or {}).items()):
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title=f"{endpoint}: response time (s)",
                    left=[
                        _alb_search(load_balancer, "TargetResponseTime", "p50", "p50"),
                        _alb_search(load_balancer, "TargetResponseTime", "p99", "p99"),
                    ],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{endpoint}: requests",
                    left=[_alb_search(load_balancer, "RequestCount", "Sum", "requests")],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{endpoint}: errors",
                    left=[
                        _alb_search(load_balancer, "HTTPCode_Target_5XX_Count", "Sum", "5xx"),
                        _alb_search(load_balancer, "HTTPCode_Target_4XX_Count", "Sum", "4xx"),
                    ],
                    width=8,
                ),
            )
