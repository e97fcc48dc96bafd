"""IAM roles assumed through EKS Pod Identity."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam

from constructs import Construct
from neuron_platform.compliance import acknowledge_managed_policies


class PodIdentityRole(Construct):
    """A role that only EKS Pod Identity can assume, optionally bound to a service account.

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
        self.role = iam.Role(
            self,
            "Role",
            description=description,
            # Pod Identity calls AssumeRole and TagSession; with_session_tags adds the latter.
            assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com").with_session_tags(),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(p) for p in managed_policies],
        )
        acknowledge_managed_policies(
            self.role,
            managed_policies,
            f"AWS-maintained policy documented for this add-on ({description}); it tracks the add-on's API needs.",
        )

    def associate(self, *, cluster_name: str, namespace: str, service_account: str) -> eks.CfnPodIdentityAssociation:
        """Bind the role to ``namespace/service_account`` (needs the eks-pod-identity-agent add-on)."""
        return eks.CfnPodIdentityAssociation(
            self,
            "Association",
            cluster_name=cluster_name,
            namespace=namespace,
            service_account=service_account,
            role_arn=self.role.role_arn,
        )
