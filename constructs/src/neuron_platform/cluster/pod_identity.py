"""IAM roles assumed through EKS Pod Identity, each trusted only for the service accounts it is bound to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import IStableAnyProducer, Lazy, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam

from constructs import Construct, IValidation
from neuron_platform.compliance import acknowledge_managed_policies

POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
# Session tags EKS Pod Identity sets on every AssumeRole it makes (EKS user guide, "Enable or
# disable session tags"): the trust policy compares them with the one association it allows.
CLUSTER_ARN_TAG = "aws:RequestTag/eks-cluster-arn"
NAMESPACE_TAG = "aws:RequestTag/kubernetes-namespace"
SERVICE_ACCOUNT_TAG = "aws:RequestTag/kubernetes-service-account"


@dataclass(frozen=True)
class PodIdentityBinding:
    """One service account of one cluster allowed to assume the role."""

    cluster_name: str
    namespace: str
    service_account: str


class PodIdentityRole(Construct):
    """A role that only EKS Pod Identity can assume, and only for the service accounts it is bound to.

    The trust policy has one statement per binding; each requires the session tags Pod
    Identity sets (``eks-cluster-arn``, ``kubernetes-namespace``,
    ``kubernetes-service-account``) to name that cluster (in this stack's account and
    region), namespace and service account. Another association in the account that points
    at the role gets no credentials. :meth:`associate` binds and creates the association;
    :meth:`bind` only binds (for associations an EKS add-on creates). A role never bound
    fails synthesis rather than deploy a trust open to every association.

    Example::

        role = PodIdentityRole(self, "Ebs", managed_policies=["service-role/AmazonEBSCSIDriverPolicy"])
        role.associate(cluster_name=cluster.cluster_name, namespace="kube-system", service_account="ebs-csi-controller-sa")
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        managed_policies: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.bindings: list[PodIdentityBinding] = []
        self.role = iam.Role(
            self,
            "Role",
            description=description,
            # Replaced below by the bound trust; kept so the L2 role knows its service principal.
            assumed_by=iam.ServicePrincipal(POD_IDENTITY_SERVICE).with_session_tags(),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(p) for p in managed_policies],
        )
        cfn_role = self.role.node.default_child
        assert isinstance(cfn_role, iam.CfnRole)
        cfn_role.assume_role_policy_document = Lazy.any(_TrustProducer(self))
        self.node.add_validation(_BoundValidation(self))
        acknowledge_managed_policies(
            self.role,
            managed_policies,
            f"AWS-maintained policy documented for this add-on ({description}); it tracks the add-on's API needs.",
        )

    def bind(self, *, cluster_name: str, namespace: str, service_account: str) -> None:
        """Let ``namespace/service_account`` of ``cluster_name`` (a cluster of this stack's
        account and region) assume the role; nothing else can."""
        self.bindings.append(PodIdentityBinding(cluster_name, namespace, service_account))

    def associate(self, *, cluster_name: str, namespace: str, service_account: str) -> eks.CfnPodIdentityAssociation:
        """Bind the role to ``namespace/service_account`` and create the association (needs
        the eks-pod-identity-agent add-on)."""
        self.bind(cluster_name=cluster_name, namespace=namespace, service_account=service_account)
        return eks.CfnPodIdentityAssociation(
            self,
            "Association" if len(self.bindings) == 1 else f"Association{len(self.bindings)}",
            cluster_name=cluster_name,
            namespace=namespace,
            service_account=service_account,
            role_arn=self.role.role_arn,
        )

    def trust_statements(self) -> list[iam.PolicyStatement]:
        """The trust policy's statements: one per binding."""
        stack = Stack.of(self)
        return [
            iam.PolicyStatement(
                sid=f"PodIdentity{i}",
                principals=[iam.ServicePrincipal(POD_IDENTITY_SERVICE)],
                actions=["sts:AssumeRole", "sts:TagSession"],
                conditions={
                    "StringEquals": {
                        CLUSTER_ARN_TAG: stack.format_arn(
                            service="eks", resource="cluster", resource_name=binding.cluster_name
                        ),
                        NAMESPACE_TAG: binding.namespace,
                        SERVICE_ACCOUNT_TAG: binding.service_account,
                    }
                },
            )
            for i, binding in enumerate(self.bindings)
        ]


@jsii.implements(IStableAnyProducer)
class _TrustProducer:
    """The trust document, built at synthesis from the bindings made until then."""

    def __init__(self, role: PodIdentityRole) -> None:
        self._role = role

    def produce(self) -> Any:
        return iam.PolicyDocument(statements=self._role.trust_statements())


@jsii.implements(IValidation)
class _BoundValidation:
    """Construct validation: a Pod Identity role must name who may assume it."""

    def __init__(self, role: PodIdentityRole) -> None:
        self._role = role

    def validate(self) -> list[str]:
        if self._role.bindings:
            return []
        return [
            f"PodIdentityRole {self._role.node.path}: bound to no service account, so its trust would admit every "
            "Pod Identity association in the account; call associate() or bind() with the cluster, namespace "
            "and service account that use it"
        ]
