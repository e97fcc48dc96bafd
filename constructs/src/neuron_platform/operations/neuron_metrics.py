"""Neuron and cluster metrics in Amazon Managed Service for Prometheus, alerts to SNS."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Fn, RemovalPolicy, Stack
from aws_cdk import aws_aps as aps
from aws_cdk import aws_eks as eks
from aws_cdk import aws_logs as logs

from constructs import Construct
from neuron_platform.log_encryption import logs_kms_key
from neuron_platform.operations.prometheus_config import (
    COLLECTOR_USER,
    AlertThresholds,
    alert_rules,
    alertmanager_definition,
    scrape_config,
    to_yaml,
)


class NeuronMetrics(Construct):
    """An AMP workspace fed by an AWS managed collector (no agent in the cluster), with the
    platform's alert rules routed to the alarm topic.

    - the workspace (AMP's encryption at rest: a customer managed key would shut out the
      managed collector), its rule and alert-manager logs in a KMS-encrypted group;
    - the collector (``AWS::APS::Scraper``): ENIs in ``subnet_ids`` with the cluster
      security group, scraping neuron-monitor, Karpenter, vLLM endpoints and the EKS
      scheduler (see :mod:`neuron_platform.operations.prometheus_config`);
    - an access entry mapping the collector's service-linked role to the
      ``aps-collector-user`` identity; the cluster stack applies that user's read-only
      RBAC (:func:`neuron_platform.k8s.metrics.collector_rbac`);
    - the rule group, and with ``alarm_topic_arn`` the alert manager publishing to that
      topic (:class:`PlatformAlarms` with ``prometheus_alerts=True`` admits AMP on it). An
      ARN rather than a topic object, so the workspace can live with the cluster while the
      topic lives in the operations stack, deployed after it.

    The workspace also serves the EKS endpoints' autoscaler (KEDA reads vLLM's metrics).

    Example::

        NeuronMetrics(self, "Metrics", project="neuron", cluster_name=cluster.cluster_name,
                      cluster_arn=cluster.cluster_arn, subnet_ids=[s.subnet_id for s in private],
                      security_group_id=cluster.cluster_security_group_id,
                      alarm_topic_arn=alarm_topic_arn(self, "neuron"))
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: str,
        cluster_name: str,
        cluster_arn: str,
        subnet_ids: Sequence[str],
        security_group_id: str,
        alarm_topic_arn: str | None = None,
        thresholds: AlertThresholds | None = None,
        scrape_interval_seconds: int = 60,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        # The workspace keeps AMP's own encryption at rest: workspaces created with a
        # customer managed key cannot be fed by AWS managed collectors. Its logs get a key.
        self.log_key = logs_kms_key(
            self,
            "WorkspaceLogKey",
            description=f"Encrypts the Prometheus workspace logs of {project}",
            removal_policy=removal_policy,
        )
        # The vendedlogs prefix lets the service manage its delivery policy on the group.
        self.log_group = logs.LogGroup(
            self,
            "WorkspaceLogs",
            log_group_name=f"/aws/vendedlogs/prometheus/{project}",
            encryption_key=self.log_key,
            retention=log_retention,
            removal_policy=removal_policy,
        )

        self.workspace = aps.CfnWorkspace(
            self,
            "Workspace",
            alias=f"{project}-metrics",
            logging_configuration=aps.CfnWorkspace.LoggingConfigurationProperty(
                log_group_arn=self.log_group.log_group_arn
            ),
            alert_manager_definition=(
                alertmanager_definition(topic_arn=alarm_topic_arn, region=stack.region) if alarm_topic_arn else None
            ),
        )
        self.workspace.apply_removal_policy(removal_policy)

        blob = to_yaml(scrape_config(cluster_name=cluster_name, interval_seconds=scrape_interval_seconds))
        self.scraper = aps.CfnScraper(
            self,
            "Collector",
            alias=f"{project}-collector",
            source=aps.CfnScraper.SourceProperty(
                eks_configuration=aps.CfnScraper.EksConfigurationProperty(
                    cluster_arn=cluster_arn, subnet_ids=list(subnet_ids), security_group_ids=[security_group_id]
                )
            ),
            # Fn::Base64 rather than encoding here: a token (an imported cluster name) in
            # the YAML would otherwise be encoded as its placeholder text.
            scrape_configuration=aps.CfnScraper.ScrapeConfigurationProperty(configuration_blob=Fn.base64(blob)),
            destination=aps.CfnScraper.DestinationProperty(
                amp_configuration=aps.CfnScraper.AmpConfigurationProperty(workspace_arn=self.workspace.attr_arn)
            ),
        )

        # EKS identities take the role ARN without its path
        # (role/aws-service-role/scraper.aps.amazonaws.com/<name> -> role/<name>).
        parts = Fn.split("/", self.scraper.attr_role_arn)
        self.access_entry = eks.CfnAccessEntry(
            self,
            "CollectorAccessEntry",
            cluster_name=cluster_name,
            principal_arn=Fn.join("/", [Fn.select(0, parts), Fn.select(3, parts)]),
            username=COLLECTOR_USER,
            type="STANDARD",
        )

        self.rules = aps.CfnRuleGroupsNamespace(
            self,
            "AlertRules",
            name=f"{project}-alerts",
            workspace=self.workspace.attr_arn,
            data=to_yaml(alert_rules(thresholds or AlertThresholds())),
        )

    @property
    def workspace_arn(self) -> str:
        return self.workspace.attr_arn

    @property
    def query_url(self) -> str:
        """The workspace's Prometheus API root for clients (KEDA), without a trailing slash."""
        stack = Stack.of(self)
        return f"https://aps-workspaces.{stack.region}.{stack.url_suffix}/workspaces/{self.workspace.attr_workspace_id}"

    @property
    def query_endpoint(self) -> str:
        """The workspace's Prometheus-compatible endpoint (``.../api/v1/query`` below it)."""
        return self.workspace.attr_prometheus_endpoint
