"""The compile pipeline's cluster step: vLLM compiles run as Jobs on the endpoints' own pools."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from neuron_platform.assets import runtime_asset
from neuron_platform.cluster.neuron_cluster import NeuronCluster
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.compile.artifact_store import ArtifactStoreRef
from neuron_platform.compile.compile_pipeline import ClusterCompileTarget, grant_job_access, lambda_step_code
from neuron_platform.compliance import acknowledge_wildcard_resources, skip_checkov
from neuron_platform.k8s.compile import COMPILE_NAMESPACE, COMPILE_SERVICE_ACCOUNT, compile_namespace_objects

# Namespaced edit (jobs, pods, pod logs) in the compile namespace and nothing else.
EDIT_POLICY = "arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
TEMPLATES_FILE = "job_templates.json"


@dataclass(frozen=True)
class ClusterJobTemplate:
    """An endpoint's compile Job (from :func:`neuron_platform.k8s.compile.compile_job_template`),
    the tag of its serving image (the compile image is built FROM it with that tag) and the
    compile image pinned for the endpoint (``<repository uri>@sha256:...``): the only image
    the Job runs. Without a pinned image the endpoint cannot compile on the cluster."""

    tag: str
    job: Mapping[str, Any]
    image: str | None = None


class ClusterCompile(Construct):
    """Runs compile Jobs on the cluster for the pipeline: a function in the VPC that creates
    and watches them (authorized by an access entry limited to ``namespace``), the namespace
    and service account with its NetworkPolicies (baseline Pod Security; see
    :mod:`neuron_platform.k8s.compile`), and the service account's Pod Identity role (write the
    runs' staging prefix, never ``artifacts/``; the Neuron cache; model buckets read-only,
    owned by ``model_bucket_account``; the one Hugging Face token secret).

    ``cluster``: a :class:`NeuronCluster`, an ``aws_eks_v2.Cluster`` or an imported cluster.
    ``store``: the :class:`~neuron_platform.compile.artifact_store.ArtifactStore`, or an
    :class:`~neuron_platform.compile.artifact_store.ImportedArtifactStore` when this construct
    lives in a stack deployed after the pipeline's (the reference app puts it in the serving
    stack, so the compile stack need not wait for the cluster).
    ``function_name``: give :func:`cluster_compile_function_name` when the pipeline is in
    another stack; :attr:`target` is what the pipeline's ``cluster_compile`` takes.
    ``lambda_code``: the folder holding ``cluster_job.py``; by default the repository's
    ``runtime_assets/compile/lambdas``, shipped inside the installed package (see
    :mod:`neuron_platform.assets`).

    Example::

        on_cluster = ClusterCompile(self, "OnCluster", cluster=cluster, vpc=vpc, subnets=vpc.private_subnets,
                                    store=store, log_key=key,
                                    templates={"llama": ClusterJobTemplate(tag, compile_job_template(plan_, timeout_seconds=14400))})
        CompilePipeline(self, "Pipeline", ..., store=store, cluster_compile=on_cluster.target)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster | eks.Cluster | NeuronCluster,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        store: ArtifactStoreRef,
        templates: Mapping[str, ClusterJobTemplate],
        log_key: kms.IKey,
        lambda_code: Path | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        namespace: str = COMPILE_NAMESPACE,
        function_name: str | None = None,
        model_buckets: Sequence[str] = (),
        model_bucket_account: str | None = None,
        hf_token_secret_arn: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        # eks.Cluster implements ICluster at run time; jsii's Python typing does not say so.
        cluster = cast(eks.ICluster, cluster.cluster if isinstance(cluster, NeuronCluster) else cluster)
        lambda_code = lambda_code or runtime_asset("compile/lambdas")
        stack = Stack.of(self)
        self.namespace = namespace
        self.endpoints = sorted(templates)
        group = logs.LogGroup(
            self, "Logs", encryption_key=log_key, retention=log_retention, removal_policy=removal_policy
        )
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        group.grant_write(role)
        # ENIs in the VPC: the AWS-documented permissions for a VPC function, without the
        # managed policy's log wildcard (the log group above is granted instead).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
            )
        )
        content = {name: {"tag": t.tag, "image": t.image, "job": t.job} for name, t in sorted(templates.items())}
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="cluster_job.handler",
            function_name=function_name,
            code=lambda_step_code(lambda_code, extra_files={TEMPLATES_FILE: json.dumps(content, indent=2)}),
            role=role,
            timeout=Duration.seconds(60),
            memory_size=256,
            log_group=group,
            reserved_concurrent_executions=10,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            # The cluster security group reaches the (possibly private) API endpoint, as the
            # CDK's own kubectl handler does.
            security_groups=[
                ec2.SecurityGroup.from_security_group_id(
                    self, "ClusterSecurityGroup", cluster.cluster_security_group_id
                )
            ],
            environment={
                "CLUSTER_NAME": cluster.cluster_name,
                "CLUSTER_ENDPOINT": cluster.cluster_endpoint,
                "CLUSTER_CA": cluster.cluster_certificate_authority_data,
                "NAMESPACE": namespace,
                "IMAGE_REPOSITORY": store.repository.repository_uri,
                "CACHE_URL": store.cache_url,
            },
        )
        cfn = self.function.node.default_child
        assert isinstance(cfn, CfnResource)
        skip_checkov(cfn, "CKV_AWS_116", "A synchronous Step Functions task: failures go to the state machine's catch.")
        skip_checkov(cfn, "CKV_AWS_173", "Environment holds the cluster's name, endpoint and CA: public facts.")
        self.access_entry = eks.CfnAccessEntry(
            self,
            "AccessEntry",
            cluster_name=cluster.cluster_name,
            principal_arn=role.role_arn,
            type="STANDARD",
            access_policies=[
                eks.CfnAccessEntry.AccessPolicyProperty(
                    policy_arn=EDIT_POLICY.format(partition=stack.partition),
                    access_scope=eks.CfnAccessEntry.AccessScopeProperty(type="namespace", namespaces=[namespace]),
                )
            ],
        )

        # What the compile pod may touch: the same as the Batch job's role.
        self.identity = PodIdentityRole(self, "PodRole", description=f"Compile jobs in namespace {namespace}")
        grant_job_access(
            self.identity.role,
            store,
            model_buckets=model_buckets,
            model_bucket_account=model_bucket_account,
            hf_token_secret_arn=hf_token_secret_arn,
        )
        self.association = self.identity.associate(
            cluster_name=cluster.cluster_name, namespace=namespace, service_account=COMPILE_SERVICE_ACCOUNT
        )
        self.manifest = eks.KubernetesManifest(
            self, "Objects", cluster=cluster, manifest=compile_namespace_objects(namespace)
        )
        self.manifest.node.add_dependency(self.association)

        for policy_owner, reason in (
            (role, _function_wildcard_reason),
            (self.identity.role, _pod_wildcard_reason),
        ):
            policy = policy_owner.node.find_child("DefaultPolicy")
            assert isinstance(policy, iam.Policy)
            acknowledge_wildcard_resources(policy, reason)
            cfn_policy = policy.node.default_child
            if policy_owner is role:
                assert isinstance(cfn_policy, iam.CfnPolicy)
                skip_checkov(cfn_policy, "CKV_AWS_111", _ENI_REASON)
                skip_checkov(cfn_policy, "CKV_AWS_109", _ENI_REASON)

    @property
    def target(self) -> ClusterCompileTarget:
        """What :class:`~neuron_platform.compile.compile_pipeline.CompilePipeline` takes as
        ``cluster_compile``: this function's name and the endpoints it compiles."""
        return ClusterCompileTarget(function_name=self.function.function_name, endpoints=tuple(self.endpoints))


_ENI_REASON = (
    "A VPC function's ENI calls (create, describe, delete, assign addresses) have no resource-level "
    "scoping for interfaces that do not exist yet."
)


def _function_wildcard_reason(resource: str) -> str:
    if resource == "*":
        return _ENI_REASON
    if "log-group" in resource:
        return "Log streams of this function's own log group, named at run time."
    raise ValueError(f"unexpected wildcard in the cluster-job function policy: {resource}")


def _pod_wildcard_reason(resource: str) -> str:
    return (
        f"{resource}: objects under one prefix of a bucket (the runs' staging prefix and the Neuron cache, or a "
        "configured model bucket); names are cache keys, runs and graph hashes that exist only at run time."
    )
