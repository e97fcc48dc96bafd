"""EKS endpoint objects for specs the example config does not cover (public, HTTPS, trn2)."""

from __future__ import annotations

from typing import Any

from neuron_platform.k8s.serving import (
    endpoint_deployment,
    endpoint_disruption_budget,
    endpoint_ingress,
    endpoint_scaled_object,
    endpoint_service,
    endpoint_service_account,
    in_flight_query,
    keda_aws_authentication,
)
from neuron_platform.serving.planner import plan
from neuron_platform.serving.spec import ServingSpec
from tests.k8s_schemas import validate

QUERY_URL = "https://aps-workspaces.us-east-2.amazonaws.com/workspaces/ws-0a1b2c3d"
CERT = "arn:aws:acm:us-east-2:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"


def _spec(**changes: Any) -> ServingSpec:
    base: dict[str, Any] = {
        "name": "qwen-trn2",
        "backend": "eks",
        "pool": "trn2",
        "model": {"s3_uri": "s3://my-models/qwen3-8b/"},
        "architecture": {
            "parameters_billion": 8.2,
            "layers": 36,
            "attention_heads": 32,
            "kv_heads": 8,
            "head_dim": 128,
        },
        "target": "trn2",
        "batch_size": 8,
        "sequence_length": 8192,
        "tensor_parallel_size": 16,
        "replicas": {"min": 2, "max": 8, "target_in_flight": 6},
        "exposure": "public",
        "certificate_arn": CERT,
    }
    return ServingSpec.model_validate(base | changes)


def test_public_https_trn2_endpoint_objects_are_schema_valid() -> None:
    served = plan(_spec(), pool_types=["trn2.48xlarge"])
    objects = [
        endpoint_service_account(served, "serving"),
        endpoint_deployment(served, namespace="serving", artifacts_url="s3://bucket/artifacts/key/"),
        endpoint_service(served, "serving"),
        endpoint_disruption_budget(served, "serving"),
        endpoint_ingress(served, "serving", load_balancer="neuron-qwen-trn2"),
        endpoint_scaled_object(served, "serving", query_url=QUERY_URL, region="us-east-2"),
        keda_aws_authentication(),
    ]
    for obj in objects:
        validate(obj)
    deployment = objects[1]["spec"]["template"]["spec"]
    (container,) = deployment["containers"]
    # trn2's newest serving image: the vllm-neuron plugin (SDK 2.32.0), its compile cache as the artifacts.
    assert container["image"] == served.serving_image
    assert served.engine == "vllm-neuron"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VLLM_CACHE_ROOT"] == "/models/compiled/neuron"
    assert env["VLLM_NEURON_DISABLE_WARMUP_COMPILE"] == "1"  # a cache miss fails; it never compiles at start
    assert container["resources"]["limits"]["aws.amazon.com/neuron"] == "4"  # TP 16 at LNC=2: 4 devices
    shell = container["command"][2]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    # The artifact check runs first; vLLM then serves the artifacts' own copy of the model, offline.
    assert shell.startswith("python3 /opt/neuron-platform/check_artifacts.py /models/compiled && exec python3 -m vllm")
    assert "--model /models/compiled/model" in shell
    assert "--num-gpu-blocks-override" not in shell  # the plugin sizes its KV cache itself
    annotations = objects[4]["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERT
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
    (trigger,) = objects[5]["spec"]["triggers"]
    assert trigger["metadata"]["threshold"] == "6"
    assert trigger["metadata"]["awsRegion"] == "us-east-2"


def test_internal_without_certificate_listens_on_http() -> None:
    served = plan(_spec(exposure="internal", certificate_arn=None), pool_types=["trn2.48xlarge"])
    annotations = endpoint_ingress(served, "serving", load_balancer="neuron-qwen-trn2")["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}]'
    assert "alb.ingress.kubernetes.io/certificate-arn" not in annotations


def test_load_balancer_names_fit_alb_limits() -> None:
    from neuron_platform.k8s.serving import load_balancer_name

    assert load_balancer_name("inf-small", "llama3-8b") == "inf-small-llama3-8b"
    long_name = load_balancer_name("a-very-long-project-name", "an-endpoint-name-too")
    assert len(long_name) <= 32
    assert long_name == load_balancer_name("a-very-long-project-name", "an-endpoint-name-too")  # stable
    assert long_name != load_balancer_name("a-very-long-project-name", "an-endpoint-name-two")


def test_scaled_object_scales_on_requests_in_flight_per_replica() -> None:
    served = plan(_spec(), pool_types=["trn2.48xlarge"])
    scaled = endpoint_scaled_object(served, "serving", query_url=QUERY_URL, region="us-east-2")["spec"]
    assert scaled["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "qwen-trn2"}
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 8)
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"  # desired replicas = in flight / threshold
    assert trigger["metadata"]["serverAddress"] == QUERY_URL
    assert trigger["metadata"]["query"] == in_flight_query(served, "serving")
    assert trigger["authenticationRef"] == {"name": "aws-pod-identity", "kind": "ClusterTriggerAuthentication"}
    # Missing metrics never scale a busy endpoint down.
    assert scaled["fallback"]["behavior"] == "currentReplicasIfHigher"
    assert scaled["fallback"]["replicas"] == 2
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 600


def test_in_flight_query_counts_running_and_waiting_of_this_endpoint_only() -> None:
    query = in_flight_query(plan(_spec(), pool_types=["trn2.48xlarge"]), "serving")
    selector = '{namespace="serving", endpoint="qwen-trn2"}'
    assert query == f"sum(vllm:num_requests_running{selector}) + sum(vllm:num_requests_waiting{selector})"


def test_keda_authentication_uses_the_operators_pod_identity() -> None:
    auth = keda_aws_authentication()
    assert auth["kind"] == "ClusterTriggerAuthentication"
    assert auth["spec"] == {"podIdentity": {"provider": "aws"}}
