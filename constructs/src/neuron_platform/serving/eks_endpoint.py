"""A serving endpoint on the EKS cluster: vLLM on Neuron devices, behind an ALB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct, IDependable
from neuron_platform.assets import runtime_asset
from neuron_platform.cluster.neuron_cluster import NeuronCluster
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.k8s.serving import (
    endpoint_checks,
    endpoint_deployment,
    endpoint_disruption_budget,
    endpoint_ingress,
    endpoint_scaled_object,
    endpoint_service,
    endpoint_service_account,
    load_balancer_name,
)
from neuron_platform.serving.artifact_access import artifacts_prefix, grant_artifact_read
from neuron_platform.serving.planner import ServingPlan


class EksEndpoint(Construct):
    """One EKS endpoint from its plan: a Pod Identity role that can only read this endpoint's
    artifacts, and the ServiceAccount, Deployment (init container fetches the artifacts;
    vLLM serves them on the planned devices with the Neuron scheduler), Service,
    PodDisruptionBudget and ALB Ingress; when ``replicas.max`` exceeds ``replicas.min``, a
    KEDA ScaledObject on vLLM's in-flight requests read from ``metrics_query_url`` (the
    Prometheus workspace; the cluster needs KEDA, see :class:`Keda`). ``check_script`` is the
    artifact check the serving container runs before vLLM, mounted from a ConfigMap; by
    default the repository's ``runtime_assets/serve/check_artifacts.py``, shipped inside the
    installed package (see :mod:`neuron_platform.assets`).

    ``cluster``: a :class:`NeuronCluster`, an ``aws_eks_v2.Cluster`` or an imported cluster.

    Example::

        plan_ = plan(spec, pool_types=pool.instance_types, project="neuron")
        EksEndpoint(self, "Llama", cluster=cluster, plan=plan_, project="neuron", namespace="serving",
                    bucket=store.bucket, key=store.key, metrics_query_url=metrics.query_url,
                    depends_on=[lbc.chart, keda.authentication])
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster | eks.Cluster | NeuronCluster,
        plan: ServingPlan,
        project: str,
        namespace: str,
        bucket: s3.IBucket,
        key: kms.IKey,
        check_script: str | None = None,
        metrics_query_url: str | None = None,
        depends_on: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # eks.Cluster implements ICluster at run time; jsii's Python typing does not say so.
        cluster = cast(eks.ICluster, cluster.cluster if isinstance(cluster, NeuronCluster) else cluster)
        if check_script is None:
            check_script = runtime_asset("serve/check_artifacts.py").read_text()
        self.plan = plan
        self.cache_key = plan.cache_key()
        self.artifacts_url = f"s3://{bucket.bucket_name}/{artifacts_prefix(self.cache_key)}"
        name = plan.spec.name
        self.load_balancer_name = load_balancer_name(project, name)
        self.identity = PodIdentityRole(self, "Identity", description=f"Serving endpoint {name}: reads its artifacts")
        self.artifact_policy = grant_artifact_read(
            self, self.identity.role, bucket=bucket, key=key, cache_key=self.cache_key
        )
        self.association = self.identity.associate(
            cluster_name=cluster.cluster_name, namespace=namespace, service_account=name
        )
        objects = [
            endpoint_service_account(plan, namespace),
            endpoint_checks(plan, namespace, script=check_script),
            endpoint_deployment(plan, namespace=namespace, artifacts_url=self.artifacts_url),
            endpoint_service(plan, namespace),
            endpoint_disruption_budget(plan, namespace),
            endpoint_ingress(plan, namespace, load_balancer=self.load_balancer_name),
        ]
        self.autoscaled = plan.spec.replicas.max > plan.spec.replicas.min
        if self.autoscaled:
            if metrics_query_url is None:
                raise ValueError(f"endpoint {name} scales between replicas; it needs metrics_query_url (KEDA)")
            objects.append(
                endpoint_scaled_object(plan, namespace, query_url=metrics_query_url, region=Stack.of(self).region)
            )
        self.manifest = eks.KubernetesManifest(self, "Objects", cluster=cluster, manifest=objects)
        self.manifest.node.add_dependency(self.association, self.artifact_policy)
        for dependency in depends_on:
            self.manifest.node.add_dependency(dependency)
