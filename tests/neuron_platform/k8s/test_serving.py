"""EKS endpoint objects for specs the example config does not cover (public, HTTPS, trn2,
sign-in), and the serving namespace's objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from neuron_platform.k8s.serving import (
    endpoint_checks,
    endpoint_deployment,
    endpoint_disruption_budget,
    endpoint_ingress,
    endpoint_scaled_object,
    endpoint_service,
    endpoint_service_account,
    in_flight_query,
    keda_trigger_authentication,
    oidc_secret_access,
    serving_namespace,
    serving_network_policies,
)
from neuron_platform.serving.planner import plan
from tests.k8s_schemas import validate, validate_keda
from tests.serving_specs import certificate_arn, cognito, oidc, trn2_spec

QUERY_URL = "https://aps-workspaces.us-east-2.amazonaws.com/workspaces/ws-0a1b2c3d"
CERT = certificate_arn("us-east-2")
SECRET = "arn:aws:secretsmanager:us-east-2:123456789012:secret:serving/qwen-AbCdEf"
VPC = ["10.0.0.0/16", "100.64.0.0/16"]
COGNITO = cognito("us-east-2")
OIDC = oidc("qwen-oidc")


def _deployment(served: Any) -> Any:
    return endpoint_deployment(
        served,
        namespace="serving",
        artifacts_url="s3://bucket/artifacts/key/",
        api_key_secret=SECRET,
        secret_region="us-east-2",
    )


def _annotations(served: Any, **kwargs: Any) -> dict[str, str]:
    ingress = endpoint_ingress(served, "serving", load_balancer="neuron-qwen-trn2", vpc_cidrs=VPC, **kwargs)
    annotations: dict[str, str] = ingress["metadata"]["annotations"]
    return annotations


def test_public_https_trn2_endpoint_objects_are_schema_valid() -> None:
    served = plan(trn2_spec(), pool_types=["trn2.48xlarge"])
    objects = [
        endpoint_service_account(served, "serving"),
        _deployment(served),
        endpoint_service(served, "serving"),
        endpoint_disruption_budget(served, "serving"),
        endpoint_ingress(served, "serving", load_balancer="neuron-qwen-trn2", vpc_cidrs=VPC, access_logs_bucket="logs"),
        endpoint_scaled_object(served, "serving", query_url=QUERY_URL, region="us-east-2"),
        keda_trigger_authentication("serving"),
    ]
    for obj in objects[:5]:
        validate(obj)
    validate_keda(objects[5:])
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
    assert "; python3 /opt/neuron-platform/check_artifacts.py /models/compiled && exec python3 -m vllm" in shell
    assert "--model /models/compiled/model --tokenizer /models/compiled/model" in shell
    assert "--num-gpu-blocks-override" not in shell  # the plugin sizes its KV cache itself
    annotations = objects[4]["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERT
    # HTTPS only: port 80 answers with a redirect to 443 and nothing else.
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}, {"HTTPS": 443}]'
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "203.0.113.0/24"
    assert "alb.ingress.kubernetes.io/auth-type" not in annotations
    (trigger,) = objects[5]["spec"]["triggers"]
    assert trigger["metadata"]["threshold"] == "6"
    assert trigger["metadata"]["awsRegion"] == "us-east-2"


def test_internal_without_certificate_listens_on_http_from_the_vpc() -> None:
    served = plan(
        trn2_spec(exposure="internal", certificate_arn=None, allowed_cidrs=None), pool_types=["trn2.48xlarge"]
    )
    annotations = _annotations(served)
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}]'
    assert "alb.ingress.kubernetes.io/certificate-arn" not in annotations
    assert "alb.ingress.kubernetes.io/ssl-redirect" not in annotations
    # Not the controller's default 0.0.0.0/0: only the VPC's ranges reach an internal endpoint.
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.0.0.0/16,100.64.0.0/16"
    # No access-log bucket given: no logging attributes.
    attributes = annotations["alb.ingress.kubernetes.io/load-balancer-attributes"]
    assert "access_logs" not in attributes
    assert "deletion_protection.enabled=true" in attributes
    assert "routing.http.drop_invalid_header_fields.enabled=true" in attributes


def test_internal_with_allowed_cidrs_admits_those_only() -> None:
    served = plan(
        trn2_spec(exposure="internal", allowed_cidrs=["10.8.0.0/16", "192.168.4.0/24"]), pool_types=["trn2.48xlarge"]
    )
    assert _annotations(served)["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.8.0.0/16,192.168.4.0/24"


def test_public_with_cognito_sign_in_and_no_ranges_is_open_behind_the_sign_in() -> None:
    served = plan(trn2_spec(allowed_cidrs=None, authentication=COGNITO), pool_types=["trn2.48xlarge"])
    ingress = endpoint_ingress(served, "serving", load_balancer="neuron-qwen-trn2", vpc_cidrs=VPC)
    validate(ingress)
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "0.0.0.0/0"
    assert annotations["alb.ingress.kubernetes.io/auth-type"] == "cognito"
    assert json.loads(annotations["alb.ingress.kubernetes.io/auth-idp-cognito"]) == {
        "userPoolARN": COGNITO["user_pool_arn"],
        "userPoolClientID": COGNITO["user_pool_client_id"],
        "userPoolDomain": "my-team",
    }
    assert annotations["alb.ingress.kubernetes.io/auth-on-unauthenticated-request"] == "authenticate"
    paths = [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]
    assert paths == ["/v1", "/oauth2/idpresponse"]
    assert (
        oidc_secret_access(served, "serving", controller_service_account="lbc", controller_namespace="kube-system")
        == []
    )


def test_oidc_sign_in_lets_the_controller_read_that_one_secret() -> None:
    served = plan(trn2_spec(authentication=OIDC), pool_types=["trn2.48xlarge"])
    annotations = _annotations(served)
    assert annotations["alb.ingress.kubernetes.io/auth-type"] == "oidc"
    assert json.loads(annotations["alb.ingress.kubernetes.io/auth-idp-oidc"]) == {
        "issuer": "https://idp.example.com",
        "authorizationEndpoint": "https://idp.example.com/authorize",
        "tokenEndpoint": "https://idp.example.com/token",
        "userInfoEndpoint": "https://idp.example.com/userinfo",
        "secretName": "qwen-oidc",
    }
    # Both: sign-in and the ranges.
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "203.0.113.0/24"
    role, binding = oidc_secret_access(
        served, "serving", controller_service_account="aws-load-balancer-controller", controller_namespace="kube-system"
    )
    validate(role)
    validate(binding)
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["qwen-oidc"], "verbs": ["get", "list", "watch"]}
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "aws-load-balancer-controller", "namespace": "kube-system"}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "qwen-trn2-oidc-client"


def test_pods_fetch_the_api_key_as_non_root_and_serve_with_it() -> None:
    served = plan(trn2_spec(), pool_types=["trn2.48xlarge"])
    pod = _deployment(served)["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert f"--region us-east-2 --secret-id {SECRET} " in init["command"][-1]
    assert init["securityContext"]["runAsNonRoot"] is True
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "HOME", "value": "/tmp"} in init["env"]
    assert {"name": "tmp", "mountPath": "/tmp"} in init["volumeMounts"]
    (container,) = pod["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "runAsNonRoot" not in container["securityContext"]  # the DLC runs vLLM as root
    checks = endpoint_checks(served, "serving", script="check", guard="guard")
    assert checks["data"] == {"check_artifacts.py": "check", "api_key_guard.py": "guard"}


def test_serving_namespace_objects_are_schema_valid() -> None:
    for obj in [serving_namespace("serving"), *serving_network_policies("serving", vpc_cidrs=VPC)]:
        validate(obj)
    inbound = serving_network_policies("serving", vpc_cidrs=VPC)[2]
    assert inbound["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": c}} for c in VPC]
    validate_keda([keda_trigger_authentication("serving")])


@pytest.mark.parametrize("path", ["/v1", "/oauth2/idpresponse"])
def test_no_catch_all_path(path: str) -> None:
    served = plan(trn2_spec(authentication=COGNITO), pool_types=["trn2.48xlarge"])
    ingress = endpoint_ingress(served, "serving", load_balancer="x", vpc_cidrs=VPC)
    paths = {p["path"]: p["pathType"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert "/" not in paths
    assert path in paths


def test_load_balancer_names_fit_alb_limits() -> None:
    from neuron_platform.k8s.serving import load_balancer_name

    assert load_balancer_name("inf-small", "llama3-8b") == "inf-small-llama3-8b"
    long_name = load_balancer_name("a-very-long-project-name", "an-endpoint-name-too")
    assert len(long_name) <= 32
    assert long_name == load_balancer_name("a-very-long-project-name", "an-endpoint-name-too")  # stable
    assert long_name != load_balancer_name("a-very-long-project-name", "an-endpoint-name-two")


def test_scaled_object_scales_on_requests_in_flight_per_replica() -> None:
    served = plan(trn2_spec(), pool_types=["trn2.48xlarge"])
    scaled = endpoint_scaled_object(served, "serving", query_url=QUERY_URL, region="us-east-2")["spec"]
    assert scaled["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "qwen-trn2"}
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 8)
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"  # desired replicas = in flight / threshold
    assert trigger["metadata"]["serverAddress"] == QUERY_URL
    assert trigger["metadata"]["query"] == in_flight_query(served, "serving")
    assert trigger["authenticationRef"] == {"name": "aws-pod-identity", "kind": "TriggerAuthentication"}
    # Missing metrics never scale a busy endpoint down.
    assert scaled["fallback"]["behavior"] == "currentReplicasIfHigher"
    assert scaled["fallback"]["replicas"] == 2
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 600


def test_in_flight_query_counts_running_and_waiting_of_this_endpoint_only() -> None:
    query = in_flight_query(plan(trn2_spec(), pool_types=["trn2.48xlarge"]), "serving")
    selector = '{namespace="serving", endpoint="qwen-trn2"}'
    assert query == f"sum(vllm:num_requests_running{selector}) + sum(vllm:num_requests_waiting{selector})"


def test_keda_authentication_uses_the_operators_pod_identity_in_the_namespace() -> None:
    auth = keda_trigger_authentication("serving")
    assert (auth["kind"], auth["metadata"]) == (
        "TriggerAuthentication",
        {"name": "aws-pod-identity", "namespace": "serving"},
    )
    assert auth["spec"] == {"podIdentity": {"provider": "aws"}}
