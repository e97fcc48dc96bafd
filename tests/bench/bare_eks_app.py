"""The baseline `make bench` measures synthesis against: a bare aws_eks_v2 app (one cluster
with the same kubectl layer, a Helm chart and a manifest), no configuration, no cdk-nag. With the CDK's defaults (built-in CloudFormation validation on)
unless CDK_VALIDATION says otherwise; with BENCH_EMPTY=1, an app of one empty stack: the floor
of any `cdk synth` (the CLI, Python and the jsii runtime).
"""

import os

from aws_cdk import App, CfnWaitConditionHandle, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk.lambda_layer_kubectl_v36 import KubectlV36Layer

validation = os.environ.get("CDK_VALIDATION")
app = App() if validation is None else App(builtin_cloud_formation_validation=validation.lower() == "true")
if os.environ.get("BENCH_EMPTY") == "1":
    CfnWaitConditionHandle(Stack(app, "Empty"), "Nothing")  # validation refuses a stack without resources
    app.synth()
    raise SystemExit(0)
stack = Stack(app, "BareEks")
layer = KubectlV36Layer(stack, "KubectlLayer")
cluster = eks.Cluster(
    stack,
    "Cluster",
    version=eks.KubernetesVersion.of("1.36"),
    kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=layer),
)
cluster.add_helm_chart(
    "Chart", chart="karpenter", repository="oci://public.ecr.aws/karpenter/karpenter", version="1.14.1"
)
cluster.add_manifest("Manifest", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
app.synth()
