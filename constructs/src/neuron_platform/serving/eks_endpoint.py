"""A serving endpoint on the EKS cluster: vLLM on Neuron devices, behind an ALB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager

from constructs import Construct, IDependable
from neuron_platform.assets import runtime_asset
from neuron_platform.cluster.load_balancer_controller import SERVICE_ACCOUNT as CONTROLLER_SERVICE_ACCOUNT
from neuron_platform.cluster.neuron_cluster import NeuronCluster
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.compliance import acknowledge_nag, skip_checkov
from neuron_platform.k8s.serving import (
    endpoint_checks,
    endpoint_deployment,
    endpoint_disruption_budget,
    endpoint_ingress,
    endpoint_scaled_object,
    endpoint_service,
    endpoint_service_account,
    load_balancer_name,
    oidc_secret_access,
)
from neuron_platform.serving.api_key import secret_region
from neuron_platform.serving.artifact_access import artifacts_prefix, grant_artifact_read
from neuron_platform.serving.planner import ServingPlan

# Where the load balancer controller runs (cluster/load_balancer_controller.py).
CONTROLLER_NAMESPACE = "kube-system"
# Generated API keys: letters and digits only (no shell or header quoting issues).
API_KEY_LENGTH = 48


class EksEndpoint(Construct):
    """One EKS endpoint from its plan: a Pod Identity role that can only read this endpoint's
    artifacts and its API key secret, and the ServiceAccount, Deployment (init container
    fetches the API key and the artifacts; vLLM serves them on the planned devices with the
    Neuron scheduler), Service, PodDisruptionBudget and ALB Ingress; when ``replicas.max``
    exceeds ``replicas.min``, a KEDA ScaledObject on vLLM's in-flight requests read from
    ``metrics_query_url`` (the Prometheus workspace; the cluster needs KEDA, see
    :class:`Keda`, and the namespace the ``aws-pod-identity`` TriggerAuthentication).

    The API key: the secret the spec names (``api_key_secret_arn``; encrypted with the AWS
    managed key or a key whose policy lets the endpoint's role decrypt), else a generated
    one, encrypted with ``key`` and removed per ``secret_removal_policy``
    (:attr:`api_key_secret`). The load balancer is open to the spec's ``allowed_cidrs``, or
    ``vpc_cidrs`` when internal, and logs to ``access_logs_bucket`` when given (see
    :class:`AlbAccessLogBucket`). ``check_script`` and ``guard_script`` are the artifact
    check and the API key middleware (``runtime_assets/serve``), mounted from a ConfigMap;
    by default the copies shipped inside the installed package (see
    :mod:`neuron_platform.assets`).

    ``cluster``: a :class:`NeuronCluster`, an ``aws_eks_v2.Cluster`` or an imported cluster.

    Example::

        plan_ = plan(spec, pool_types=pool.instance_types, project="neuron")
        EksEndpoint(self, "Llama", cluster=cluster, plan=plan_, project="neuron", namespace="serving",
                    bucket=store.bucket, key=store.key, vpc_cidrs=["10.0.0.0/16"],
                    metrics_query_url=metrics.query_url, depends_on=[lbc.chart, trigger_authentication])
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
        vpc_cidrs: Sequence[str],
        access_logs_bucket: s3.IBucket | None = None,
        secret_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        check_script: str | None = None,
        guard_script: str | None = None,
        metrics_query_url: str | None = None,
        depends_on: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # eks.Cluster implements ICluster at run time; jsii's Python typing does not say so.
        cluster = cast(eks.ICluster, cluster.cluster if isinstance(cluster, NeuronCluster) else cluster)
        if check_script is None:
            check_script = runtime_asset("serve/check_artifacts.py").read_text()
        if guard_script is None:
            guard_script = runtime_asset("serve/api_key_guard.py").read_text()
        self.plan = plan
        self.cache_key = plan.cache_key()
        self.artifacts_url = f"s3://{bucket.bucket_name}/{artifacts_prefix(self.cache_key)}"
        spec = plan.spec
        name = spec.name
        self.load_balancer_name = load_balancer_name(project, name)
        self.identity = PodIdentityRole(
            self, "Identity", description=f"Serving endpoint {name}: reads its artifacts and its API key"
        )
        self.artifact_policy = grant_artifact_read(
            self, self.identity.role, bucket=bucket, key=key, cache_key=self.cache_key
        )
        self.api_key_secret: secretsmanager.ISecret
        if spec.api_key_secret_arn:
            self.api_key_secret = secretsmanager.Secret.from_secret_complete_arn(
                self, "ApiKey", spec.api_key_secret_arn
            )
            region = secret_region(spec.api_key_secret_arn) or Stack.of(self).region
        else:
            self.api_key_secret = _generated_api_key(
                self, project=project, endpoint=name, key=key, removal_policy=secret_removal_policy
            )
            region = Stack.of(self).region
        # This one secret, nothing else (a policy of its own, no wildcard).
        self.api_key_policy = iam.Policy(
            self,
            "ApiKeyRead",
            roles=[self.identity.role],
            statements=[
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"], resources=[self.api_key_secret.secret_arn]
                )
            ],
        )
        self.association = self.identity.associate(
            cluster_name=cluster.cluster_name, namespace=namespace, service_account=name
        )
        objects = [
            endpoint_service_account(plan, namespace),
            endpoint_checks(plan, namespace, script=check_script, guard=guard_script),
            endpoint_deployment(
                plan,
                namespace=namespace,
                artifacts_url=self.artifacts_url,
                api_key_secret=self.api_key_secret.secret_arn,
                secret_region=region,
            ),
            endpoint_service(plan, namespace),
            endpoint_disruption_budget(plan, namespace),
            endpoint_ingress(
                plan,
                namespace,
                load_balancer=self.load_balancer_name,
                vpc_cidrs=vpc_cidrs,
                access_logs_bucket=access_logs_bucket.bucket_name if access_logs_bucket else None,
            ),
            *oidc_secret_access(
                plan,
                namespace,
                controller_service_account=CONTROLLER_SERVICE_ACCOUNT,
                controller_namespace=CONTROLLER_NAMESPACE,
            ),
        ]
        self.autoscaled = plan.spec.replicas.max > plan.spec.replicas.min
        if self.autoscaled:
            if metrics_query_url is None:
                raise ValueError(f"endpoint {name} scales between replicas; it needs metrics_query_url (KEDA)")
            objects.append(
                endpoint_scaled_object(plan, namespace, query_url=metrics_query_url, region=Stack.of(self).region)
            )
        self.manifest = eks.KubernetesManifest(self, "Objects", cluster=cluster, manifest=objects)
        self.manifest.node.add_dependency(self.association, self.artifact_policy, self.api_key_policy)
        if access_logs_bucket is not None and access_logs_bucket.policy is not None:
            # The load balancer checks it may write before it turns logging on.
            self.manifest.node.add_dependency(access_logs_bucket.policy)
        for dependency in depends_on:
            self.manifest.node.add_dependency(dependency)


def _generated_api_key(
    scope: Construct, *, project: str, endpoint: str, key: kms.IKey, removal_policy: RemovalPolicy
) -> secretsmanager.Secret:
    """A random key (letters and digits) in a secret with a generated name: a secret kept by
    ``cdk destroy`` never blocks the next deploy. Clients find it through the serving stack's
    output (:func:`neuron_platform.serving.api_key.api_key_output_key`)."""
    secret = secretsmanager.Secret(
        scope,
        "ApiKey",
        description=f"API key of serving endpoint {project}/{endpoint} (Authorization: Bearer <key>)",
        encryption_key=key,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            exclude_punctuation=True, include_space=False, password_length=API_KEY_LENGTH
        ),
        removal_policy=removal_policy,
    )
    reason = (
        "A static API key that vLLM reads at pod start and clients hold: rotate it by putting a new value and "
        "restarting the Deployment (docs/serving.md); a rotation Lambda would break running clients unannounced."
    )
    acknowledge_nag(secret, "AwsSolutions-SMG4", reason)
    cfn_secret = secret.node.default_child
    assert isinstance(cfn_secret, secretsmanager.CfnSecret)
    skip_checkov(cfn_secret, "CKV2_AWS_57", reason)
    return secret
