"""The operations stack: alarms to SNS, the cost guard and the dashboard."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack

from constructs import Construct
from neuron_platform.config import PlatformConfig
from neuron_platform.operations.platform_alarms import PlatformAlarms, SageMakerVariant
from neuron_platform.operations.platform_dashboard import PlatformDashboard
from neuron_platform.serving.sagemaker_endpoint import VARIANT
from stacks.cluster_stack import ClusterStack
from stacks.compile_stack import CompileStack
from stacks.sagemaker_stack import SageMakerStack
from stacks.serving_stack import ServingStack
from stacks.tags import PROJECT_TAG


class OperationsStack(Stack):
    """What an on-call engineer watches, wired from the other stacks."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        cluster: ClusterStack,
        compile_stack: CompileStack | None,
        serving: ServingStack | None,
        sagemaker: SageMakerStack | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = config.operations
        project = config.project.name
        removal = RemovalPolicy.RETAIN if config.project.retain_data_on_destroy else RemovalPolicy.DESTROY
        state_machine = compile_stack.pipeline.state_machine if compile_stack else None
        variants = [
            SageMakerVariant(endpoint.endpoint_name, VARIANT)
            for endpoint in (sagemaker.endpoints.values() if sagemaker else [])
        ]
        self.alarms = PlatformAlarms(
            self,
            "Alarms",
            project=project,
            project_tag=PROJECT_TAG,
            emails=settings.alarm_emails,
            interruption_queue=cluster.karpenter.queue,
            interruption_backlog=settings.interruption_backlog,
            compile_state_machine=state_machine,
            sagemaker_variants=variants,
            endpoint_5xx_per_5_minutes=settings.endpoint_5xx_per_5_minutes,
            monthly_budget_usd=settings.monthly_budget_usd,
            budget_alert_percent=settings.budget_alert_percent,
            prometheus_alerts=config.collects_metrics,
            removal_policy=removal,
        )
        self.dashboard = PlatformDashboard(
            self,
            "Dashboard",
            project=project,
            interruption_queue=cluster.karpenter.queue,
            interruption_rules=cluster.karpenter.rules,
            compile_state_machine=state_machine,
            sagemaker_variants=variants,
            eks_load_balancers={
                name: e.load_balancer_name for name, e in (serving.eks_endpoints if serving else {}).items()
            },
            alarms=list(self.alarms.alarms.values()),
        )
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
