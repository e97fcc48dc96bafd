"""The cluster stack: EKS, add-ons, Karpenter, device plugins and the Neuron pools."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Acknowledgment, CfnOutput, RemovalPolicy, Stack, Validations
from aws_cdk import aws_logs as logs

from constructs import Construct, IDependable
from neuron_platform.capacity import plan_pool
from neuron_platform.cluster import (
    GangAdmission,
    Karpenter,
    KarpenterTeardown,
    Keda,
    LoadBalancerController,
    LustreVolume,
    NeuronCluster,
    NeuronDevicePlugins,
    NeuronNodePool,
    SystemNodeGroupProps,
    TrainingPlatform,
)
from neuron_platform.config import PlatformConfig
from neuron_platform.k8s.metrics import collector_rbac
from neuron_platform.k8s.training import training_namespace
from neuron_platform.log_encryption import logs_kms_key, retention_from_days
from stacks.network_stack import NetworkStack
from stacks.tags import PROJECT_TAG

if TYPE_CHECKING:
    # Imported where they are built: each pulls in aws_cdk modules (Prometheus, CloudWatch,
    # FSx) that a config without metrics or shared storage does not load (synth time).
    from neuron_platform.operations.neuron_metrics import NeuronMetrics
    from neuron_platform.storage import TrainingFileSystem


class ClusterStack(Stack):
    """Everything inside and around the EKS cluster, wired from the configuration."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, network: NetworkStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        name = config.project.name
        removal = RemovalPolicy.RETAIN if config.project.retain_data_on_destroy else RemovalPolicy.DESTROY
        net = network.network
        settings = config.cluster
        log_retention = retention_from_days(settings.log_retention_days)
        plans = {pool.name: plan_pool(pool) for pool in config.pools}

        self.log_key = logs_kms_key(
            self, "LogKey", description=f"Encrypts the log groups of EKS cluster {name}", removal_policy=removal
        )
        # Created before the cluster so EKS writes control-plane logs into a group we
        # own: encrypted, with retention, and kept after destroy.
        self.control_plane_logs = logs.LogGroup(
            self,
            "ControlPlaneLogs",
            log_group_name=f"/aws/eks/{name}/cluster",
            encryption_key=self.log_key,
            retention=log_retention,
            removal_policy=removal,
        )
        self.cluster = NeuronCluster(
            self,
            "Cluster",
            cluster_name=name,
            vpc=net.vpc,
            control_plane_subnets=net.private_subnets,
            admin_principal_arns=settings.admin_principal_arns,
            public_access_cidrs=settings.endpoint_public_access_cidrs,
            service_ipv4_cidr=settings.service_ipv4_cidr,
            system_nodes=SystemNodeGroupProps(
                instance_types=settings.system_nodes.instance_types,
                min_size=settings.system_nodes.min_size,
                max_size=settings.system_nodes.max_size,
                disk_gib=settings.system_nodes.disk_gib,
            ),
            log_key=self.log_key,
            removal_policy=removal,
        )
        eks_cluster = self.cluster.cluster
        if net.imported:
            Validations.of(self.cluster).acknowledge(
                Acknowledgment(
                    id="Annotation::@aws-cdk/aws-eks:clusterMustManuallyTagSubnet",
                    reason="Subnets of an imported VPC are tagged by their owner; docs/deploying.md 'Existing VPCs' lists the tags.",
                )
            )
        eks_cluster.node.add_dependency(self.control_plane_logs)

        training = config.training.enabled
        self.karpenter = Karpenter(
            self,
            "Karpenter",
            cluster=self.cluster,
            node_overlay=training,
            static_capacity=any(p.static_nodes for p in config.pools),
        )
        self.karpenter.controller_chart.node.add_dependency(self.cluster.system_nodegroup)
        self.teardown = KarpenterTeardown(
            self,
            "KarpenterTeardown",
            cluster=self.cluster,
            log_key=self.log_key,
            log_retention=log_retention,
            removal_policy=removal,
        )
        # Delete order: pools -> controller -> teardown -> node role, cluster, network.
        # (KarpenterTeardown itself depends on the cluster's L1 resource.)
        self.teardown.resource.node.add_dependency(self.karpenter.node_role, self.karpenter.node_access_entry)
        self.karpenter.controller_chart.node.add_dependency(self.teardown.resource)

        # The managed Prometheus collector's interfaces sit in the primary private subnets.
        existing = config.network.existing_vpc
        primary_cidr = existing.vpc_cidr if existing else config.network.vpc_cidr
        self.device_plugins = NeuronDevicePlugins(
            self,
            "DevicePlugins",
            cluster=self.cluster,
            efa=config.uses_efa,
            scraper_cidrs=[primary_cidr] if config.collects_metrics else [],
            depends_on=[self.cluster.system_nodegroup],
        )
        self.load_balancer_controller = LoadBalancerController(
            self,
            "LoadBalancerController",
            cluster=self.cluster,
            vpc_id=net.vpc.vpc_id,
            depends_on=[self.cluster.system_nodegroup],
        )

        self.metrics: NeuronMetrics | None = None
        self.keda: Keda | None = None
        if config.collects_metrics:
            from neuron_platform.operations.neuron_metrics import NeuronMetrics
            from neuron_platform.operations.platform_alarms import alarm_topic_arn
            from neuron_platform.operations.prometheus_config import AlertThresholds

            prometheus = config.operations.prometheus
            self.metrics = NeuronMetrics(
                self,
                "Metrics",
                project=name,
                cluster_name=eks_cluster.cluster_name,
                cluster_arn=eks_cluster.cluster_arn,
                subnet_ids=[s.subnet_id for s in net.private_subnets],
                security_group_id=eks_cluster.cluster_security_group_id,
                # The operations stack (deployed after this one) owns the topic.
                alarm_topic_arn=alarm_topic_arn(self, name) if config.operations.enabled else None,
                thresholds=AlertThresholds(
                    idle_core_utilization=prometheus.idle_core_utilization,
                    idle_core_minutes=prometheus.idle_core_minutes,
                    pending_pod_minutes=prometheus.pending_pod_minutes,
                    execution_errors_per_10_minutes=prometheus.execution_errors_per_10_minutes,
                    endpoint_5xx_per_5_minutes=config.operations.endpoint_5xx_per_5_minutes,
                ),
                scrape_interval_seconds=prometheus.scrape_interval_seconds,
                log_retention=log_retention,
                removal_policy=removal,
            )
            # Read-only RBAC for the collector's user (mapped by the metrics access entry).
            for obj in collector_rbac():
                eks_cluster.add_manifest(f"MetricsCollector{obj['kind']}", obj)
            CfnOutput(self, "PrometheusQueryUrl", value=self.metrics.query_url)
            if config.eks_endpoints:
                self.keda = Keda(
                    self,
                    "Keda",
                    cluster=self.cluster,
                    workspace_arn=self.metrics.workspace_arn,
                    depends_on=[self.cluster.system_nodegroup],
                )

        self.pools: dict[str, NeuronNodePool] = {}
        for pool in config.pools:
            security_groups = [eks_cluster.cluster_security_group_id]
            if pool.efa:
                assert network.efa is not None  # the network stack creates it for EFA pools
                security_groups.append(network.efa.security_group_id)
            self.pools[pool.name] = NeuronNodePool(
                self,
                f"Pool-{pool.name}",
                cluster=self.cluster,
                plan=plans[pool.name],
                node_role=self.karpenter.node_role,
                subnets=[net.node_subnet_in(pool.zone)] if pool.zone else net.node_subnets,
                security_group_ids=security_groups,
                depends_on=[self.karpenter.controller_chart, *self.device_plugins.charts],
                tags={PROJECT_TAG: name},
            )

        self.training: TrainingPlatform | None = None
        self.gang_admission: GangAdmission | None = None
        self.file_system: TrainingFileSystem | None = None
        self.training_volume: LustreVolume | None = None
        storage = config.training.shared_storage
        namespace_dependencies: list[IDependable] = []
        if training:
            # Created (with its Pod Security level) before anything lands in it.
            namespace_dependencies.append(
                eks_cluster.add_manifest("TrainingNamespace", training_namespace(config.training.namespace))
            )
        if training and storage.enabled:
            zone = config.training_zone
            assert zone is not None  # config validation requires one zone for shared storage
            from neuron_platform.storage import TrainingFileSystem

            self.file_system = TrainingFileSystem(
                self,
                "TrainingFileSystem",
                vpc=net.vpc,
                subnet=net.private_subnet_in(zone),
                client_security_group_ids=[eks_cluster.cluster_security_group_id],
                storage_gib=storage.storage_gib,
                throughput_mb_per_tib=storage.throughput_mb_per_tib,
                data_bucket_name=storage.data_bucket,
                data_prefix=storage.data_prefix,
                removal_policy=removal,
            )
            fs = self.file_system.file_system
            self.training_volume = LustreVolume(
                self,
                "TrainingVolume",
                cluster=self.cluster,
                file_system_id=fs.file_system_id,
                dns_name=fs.dns_name,
                mount_name=fs.mount_name,
                storage_gib=storage.storage_gib,
                zone=zone,
                namespace=config.training.namespace,
                depends_on=[self.cluster.system_nodegroup, *namespace_dependencies],
            )
            # Only the volume waits for the file system; the CSI driver installs beside it.
            self.training_volume.manifest.node.add_dependency(self.file_system.data_repository)
        if training:
            self.training = TrainingPlatform(
                self,
                "Training",
                cluster=self.cluster,
                pools=[plans[p.name] for p in config.efa_training_pools],
                namespace=config.training.namespace,
                compile_cache_url=config.training.compile_cache_url,
                shared_claim=self.training_volume.claim_name if self.training_volume else None,
                depends_on=[self.karpenter.controller_chart, self.cluster.system_nodegroup, *namespace_dependencies],
            )
            self.gang_admission = GangAdmission(
                self,
                "GangAdmission",
                cluster=self.cluster,
                pools=[plans[p.name] for p in config.efa_training_pools],
                namespace=config.training.namespace,
                depends_on=[self.cluster.system_nodegroup, *namespace_dependencies],
            )
