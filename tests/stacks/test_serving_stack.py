"""Fine-grained assertions on the serving stacks: EKS objects (serving) and SageMaker resources (sagemaker)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from neuron_platform import versions
from neuron_platform.serving.planner import plan
from tests.conftest import REPO, SynthesizedApp
from tests.helpers import manifests, props, resources


def serving_json(app: SynthesizedApp) -> dict[str, Any]:
    assert app.platform.serving is not None
    return app.template_json(app.platform.serving)


def objects(app: SynthesizedApp) -> dict[tuple[str, str], dict[str, Any]]:
    """The endpoints' objects (the on-pool compile's namespace, in the same stack, left out)."""
    from neuron_platform.k8s.compile import COMPILE_NAMESPACE

    return {
        (o["kind"], o["metadata"]["name"]): o
        for o in manifests(serving_json(app))
        if COMPILE_NAMESPACE not in (o["metadata"].get("namespace"), o["metadata"]["name"])
    }


def only(app: SynthesizedApp, type_name: str) -> dict[str, Any]:
    (item,) = resources(app.template(app.platform.serving), type_name).values()  # type: ignore[arg-type]
    return item


def sagemaker_template(app: SynthesizedApp) -> Any:
    assert app.platform.sagemaker is not None
    return app.template(app.platform.sagemaker)


def sagemaker_only(app: SynthesizedApp, type_name: str) -> dict[str, Any]:
    (item,) = resources(sagemaker_template(app), type_name).values()
    return item


@pytest.fixture(scope="module")
def eks_plan(inference_app: SynthesizedApp) -> Any:
    spec = next(e for e in inference_app.config.serving.endpoints if e.backend == "eks")
    pool = next(p for p in inference_app.config.pools if p.name == spec.pool)
    return plan(spec, pool_types=pool.instance_types, project="inf-small")


# --- EKS ----------------------------------------------------------------------------------------


def test_deployment_runs_the_pinned_image_on_the_planned_devices(inference_app: SynthesizedApp, eks_plan: Any) -> None:
    deployment = objects(inference_app)[("Deployment", "llama3-8b")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # The pool's serving image: vLLM 0.13.0 on SDK 2.28.0, the last on which NxD Inference supports inf2.
    assert container["image"] == inference_app.config.pool_stack("inf2-large").image("serving")
    assert container["image"].endswith(":0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04")
    assert container["resources"]["limits"]["aws.amazon.com/neuron"] == "4"
    assert pod["schedulerName"] == "my-scheduler"
    assert pod["nodeSelector"] == {
        "neuron-platform/pool": "inf2-large",
        "node.kubernetes.io/instance-type": "inf2.48xlarge",
    }
    assert {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert deployment["spec"]["replicas"] == 3
    command = container["command"][2].split()
    assert command[command.index("--tensor-parallel-size") + 1] == "8"
    assert command[command.index("--max-num-seqs") + 1] == "4"
    assert command[command.index("--max-model-len") + 1] == "4096"
    assert command[command.index("--num-gpu-blocks-override") + 1] == "4"  # as the artifacts were compiled


def test_nothing_compiles_at_start_up(inference_app: SynthesizedApp, eks_plan: Any) -> None:
    pod = objects(inference_app)[("Deployment", "llama3-8b")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NEURON_COMPILED_ARTIFACTS"] == "/models/compiled/neuron"
    # Offline: no Hugging Face Hub at start (weights and tokenizer come from the artifacts), no usage reports.
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["VLLM_NO_USAGE_STATS"] == env["DO_NOT_TRACK"] == "1"
    assert not any("TOKEN" in name for name in env)
    shell = container["command"][2]
    assert "--model /models/compiled/model --tokenizer /models/compiled/model " in shell
    (init,) = pod["initContainers"]
    assert init["image"] == versions.AWS_CLI_IMAGE
    script = init["command"][-1]
    assert f"/artifacts/{eks_plan.cache_key()}/ /models/compiled" in script
    assert "test -s /models/compiled/manifest.json" in script
    # Artifacts of another SDK stop the pod before vLLM: the init container checks the SDK line...
    assert """grep -q '"sdk": "2.28.0"' /models/compiled/manifest.json""" in script
    # ...and the serving container the engine and compiler, with its own Python, then execs vLLM.
    assert "; python3 /opt/neuron-platform/check_artifacts.py /models/compiled && exec python3 -m vllm" in shell
    assert (env["NEURON_PLATFORM_SDK"], env["NEURON_PLATFORM_ENGINE"]) == ("2.28.0", "vllm-nxdi")
    assert env["NEURON_PLATFORM_NEURONX_CC"] == eks_plan.compiler
    assert env["NEURON_PLATFORM_CACHE_KEY"] == eks_plan.cache_key()  # the check compares the manifest's key
    models = next(m for m in container["volumeMounts"] if m["name"] == "models")
    assert models["readOnly"] is True  # a failed load cannot recompile over the artifacts
    checks = objects(inference_app)[("ConfigMap", "llama3-8b-checks")]
    assert (
        checks["data"]["check_artifacts.py"] == (REPO / "runtime_assets" / "serve" / "check_artifacts.py").read_text()
    )
    assert checks["data"]["api_key_guard.py"] == (REPO / "runtime_assets" / "serve" / "api_key_guard.py").read_text()


def test_probes_give_the_model_time_to_load(inference_app: SynthesizedApp) -> None:
    container = objects(inference_app)[("Deployment", "llama3-8b")]["spec"]["template"]["spec"]["containers"][0]
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": 8000}
    assert startup["periodSeconds"] * startup["failureThreshold"] == 1800
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["periodSeconds"] == 30


def test_disruption_budget_spread_service_ingress_and_scaled_object(inference_app: SynthesizedApp) -> None:
    objs = objects(inference_app)
    assert objs[("PodDisruptionBudget", "llama3-8b")]["spec"]["maxUnavailable"] == 1
    spread = objs[("Deployment", "llama3-8b")]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert objs[("Service", "llama3-8b")]["spec"]["ports"][0]["targetPort"] == 8000
    ingress = objs[("Ingress", "llama3-8b")]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert "alb.ingress.kubernetes.io/certificate-arn" not in ingress["metadata"]["annotations"]
    # Only the OpenAI API goes through the load balancer (not /metrics, /invocations, /tokenize...).
    (rule,) = ingress["spec"]["rules"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/v1", "Prefix")]
    scaled = objs[("ScaledObject", "llama3-8b")]["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (3, 6)
    (trigger,) = scaled["triggers"]
    assert trigger["metadata"]["threshold"] == "4"
    assert trigger["metadata"]["awsRegion"] == "us-west-2"
    assert "vllm:num_requests_running" in trigger["metadata"]["query"]
    assert ("HorizontalPodAutoscaler", "llama3-8b") not in objs  # KEDA owns the HPA it creates


def test_keda_authenticates_through_the_serving_namespace_only(inference_app: SynthesizedApp) -> None:
    objs = objects(inference_app)
    (trigger,) = objs[("ScaledObject", "llama3-8b")]["spec"]["triggers"]
    assert trigger["authenticationRef"] == {"name": "aws-pod-identity", "kind": "TriggerAuthentication"}
    authentication = objs[("TriggerAuthentication", "aws-pod-identity")]
    assert authentication["metadata"]["namespace"] == "serving"
    assert authentication["spec"] == {"podIdentity": {"provider": "aws"}}
    assert not [k for k in objs if k[0] == "ClusterTriggerAuthentication"]


def test_pod_identity_reads_only_this_endpoints_artifacts(inference_app: SynthesizedApp, eks_plan: Any) -> None:
    associations = resources(inference_app.template(inference_app.platform.serving), "AWS::EKS::PodIdentityAssociation")  # type: ignore[arg-type]
    (association,) = [a for a in associations.values() if props(a)["Namespace"] == "serving"]
    assert (props(association)["Namespace"], props(association)["ServiceAccount"]) == ("serving", "llama3-8b")
    policies = resources(inference_app.template(inference_app.platform.serving), "AWS::IAM::Policy")  # type: ignore[arg-type]
    (policy,) = [p for k, p in policies.items() if k.startswith("Eksllama38bArtifactRead")]
    statements = props(policy)["PolicyDocument"]["Statement"]
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert actions == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]
    assert f"/artifacts/{eks_plan.cache_key()}/*" in json.dumps(statements)
    # ...and its own API key, nothing else.
    role = [
        k for k in resources(serving_template(inference_app), "AWS::IAM::Role") if k.startswith("Eksllama38bIdentity")
    ]
    granted = [p for p in policies.values() if {"Ref": role[0]} in props(p)["Roles"]]
    assert len(granted) == 2
    (key_policy,) = [p for k, p in policies.items() if k.startswith("Eksllama38bApiKeyRead")]
    (statement,) = props(key_policy)["PolicyDocument"]["Statement"]
    assert statement == {
        "Action": "secretsmanager:GetSecretValue",
        "Effect": "Allow",
        "Resource": {"Ref": secret_id(inference_app)},
    }


# --- Security: API key, namespace, pods, load balancer --------------------------------------------


def serving_template(app: SynthesizedApp) -> Any:
    assert app.platform.serving is not None
    return app.template(app.platform.serving)


def secret_id(app: SynthesizedApp) -> str:
    (logical_id,) = resources(serving_template(app), "AWS::SecretsManager::Secret")
    return str(logical_id)


def test_every_eks_endpoint_gets_an_api_key_secret_kept_with_the_data(inference_app: SynthesizedApp) -> None:
    template = serving_json(inference_app)
    secret = template["Resources"][secret_id(inference_app)]
    assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain"  # retain_data_on_destroy: true
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 48}
    assert "SecretStringTemplate" not in generated  # SecretString is the key itself
    assert secret["Properties"]["KmsKeyId"] == {"Fn::ImportValue": "inf-small-artifacts-key-arn"}
    assert "Name" not in secret["Properties"]  # a kept secret never blocks the next deploy
    # Clients find it through the stack output endpoint invoke reads.
    assert template["Outputs"]["ApiKeySecretllama3D8b"]["Value"] == {"Ref": secret_id(inference_app)}


def test_the_api_key_reaches_vllm_without_any_manifest_holding_it(inference_app: SynthesizedApp) -> None:
    objs = objects(inference_app)
    assert not [k for k in objs if k[0] == "Secret"]  # no Kubernetes Secret, hand-made or generated
    pod = objs[("Deployment", "llama3-8b")]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (container,) = pod["containers"]
    script = init["command"][-1]
    # The init container (the endpoint's Pod Identity role) fetches it into a memory-backed volume...
    assert script.startswith(
        "( umask 027; aws secretsmanager get-secret-value --region us-west-2 --secret-id 'placeholder' "
        "--query SecretString --output text > /run/neuron-platform/api-key/key ) || "
    )
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["api-key"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Mi"}
    assert {"name": "api-key", "mountPath": "/run/neuron-platform/api-key"} in init["volumeMounts"]
    assert {"name": "api-key", "mountPath": "/run/neuron-platform/api-key", "readOnly": True} in container[
        "volumeMounts"
    ]
    # ...and the serving container's wrapper exports it before it execs vLLM, which requires it everywhere.
    shell = container["command"][2]
    assert shell.startswith('VLLM_API_KEY="$(cat /run/neuron-platform/api-key/key)" && test -n "$VLLM_API_KEY" || ')
    assert "export VLLM_API_KEY;" in shell
    assert shell.endswith("--middleware api_key_guard.RequireApiKey")
    assert "VLLM_API_KEY" not in {e["name"] for e in container["env"]}
    assert "--api-key" not in shell


def test_serving_namespace_enforces_baseline_and_denies_by_default(inference_app: SynthesizedApp) -> None:
    objs = objects(inference_app)
    labels = objs[("Namespace", "serving")]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert objs[("NetworkPolicy", "default-deny")]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert ("NetworkPolicy", "allow-dns") in objs
    inbound = objs[("NetworkPolicy", "endpoints-from-vpc")]["spec"]
    assert inbound["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 8000}]}
    ]
    outbound = objs[("NetworkPolicy", "endpoints-to-aws")]["spec"]
    assert outbound["policyTypes"] == ["Egress"]
    assert outbound["egress"] == [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]},
        {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]},
    ]
    assert [k for k in objs if k[0] == "NetworkPolicy"] == [
        ("NetworkPolicy", n) for n in ("default-deny", "allow-dns", "endpoints-from-vpc", "endpoints-to-aws")
    ]


def test_serving_pods_run_without_privileges_or_an_api_token(inference_app: SynthesizedApp) -> None:
    objs = objects(inference_app)
    assert objs[("ServiceAccount", "llama3-8b")]["automountServiceAccountToken"] is False
    pod = objs[("Deployment", "llama3-8b")]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 1000}
    dropped = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (init,) = pod["initContainers"]
    assert init["securityContext"] == dropped | {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
    }
    (container,) = pod["containers"]
    assert container["securityContext"] == dropped  # root (the DLC's user), nothing more
    for spec in (init, container):
        assert "privileged" not in spec["securityContext"]
    assert not any(key.startswith("host") for key in pod)


def test_load_balancer_is_restricted_hardened_and_logged(inference_app: SynthesizedApp) -> None:
    annotations = objects(inference_app)[("Ingress", "llama3-8b")]["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.20.0.0/16"  # internal: the VPC
    attributes = dict(
        a.split("=", 1) for a in annotations["alb.ingress.kubernetes.io/load-balancer-attributes"].split(",")
    )
    assert attributes == {
        "idle_timeout.timeout_seconds": "600",
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "deletion_protection.enabled": "true",
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": "placeholder",
        "access_logs.s3.prefix": "llama3-8b",
    }
    template = serving_json(inference_app)
    (bucket_id,) = resources(serving_template(inference_app), "AWS::S3::Bucket")
    bucket = template["Resources"][bucket_id]
    assert bucket["DeletionPolicy"] == "Retain"
    rules = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules == [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]  # what ALB log delivery takes
    assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    (policy,) = resources(serving_template(inference_app), "AWS::S3::BucketPolicy").values()
    deny, write = props(policy)["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    # Elastic Load Balancing's account for us-west-2, only under <prefix>/AWSLogs/<this account>/.
    assert write["Principal"] == {"AWS": "arn:aws:iam::797873946194:root"}
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"]["Fn::Join"][1][1:] == ["/*/AWSLogs/", {"Ref": "AWS::AccountId"}, "/*"]


# --- SageMaker -----------------------------------------------------------------------------------


def test_sagemaker_model_uses_the_pinned_image_artifacts_and_isolation(inference_app: SynthesizedApp) -> None:
    model = props(sagemaker_only(inference_app, "AWS::SageMaker::Model"))
    container = model["PrimaryContainer"]
    # The Hugging Face vLLM image of the DLC data (optimum-neuron 0.4.5, SDK 2.26.1), in this region.
    assert container["Image"] == (
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/huggingface-vllm-inference-neuronx:"
        "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04"
    )
    assert container["Environment"] == {
        "SM_ON_MODEL": "/opt/ml/model",
        "SM_ON_BATCH_SIZE": "4",
        "SM_ON_SEQUENCE_LENGTH": "4096",
        "SM_ON_TENSOR_PARALLEL_SIZE": "8",
    }
    source = container["ModelDataSource"]["S3DataSource"]
    assert (source["S3DataType"], source["CompressionType"]) == ("S3Prefix", "None")
    assert "/artifacts/meta-llama-3-8b-instruct-inf2-tp8-b4-s4096-" in json.dumps(source["S3Uri"])
    assert model["EnableNetworkIsolation"] is True
    assert len(model["VpcConfig"]["Subnets"]) == 2


def test_sagemaker_endpoint_config_timeouts_kms_and_instance(inference_app: SynthesizedApp) -> None:
    config = props(sagemaker_only(inference_app, "AWS::SageMaker::EndpointConfig"))
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.inf2.24xlarge"
    assert variant["InitialInstanceCount"] == 1
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 3600
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 3600
    assert "KmsKeyId" in config
    assert props(sagemaker_only(inference_app, "AWS::SageMaker::Endpoint"))["EndpointName"] == "inf-small-llama3-8b-sm"


def test_sagemaker_autoscaling_tracks_concurrent_requests(inference_app: SynthesizedApp) -> None:
    target = props(sagemaker_only(inference_app, "AWS::ApplicationAutoScaling::ScalableTarget"))
    assert target["ResourceId"] == "endpoint/inf-small-llama3-8b-sm/variant/main"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    policy = props(sagemaker_only(inference_app, "AWS::ApplicationAutoScaling::ScalingPolicy"))
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    )
    assert tracking["TargetValue"] == 4


def test_sagemaker_role_trusts_sagemaker_for_this_account_and_region_only(inference_app: SynthesizedApp) -> None:
    roles = resources(sagemaker_template(inference_app), "AWS::IAM::Role")
    (role,) = [r for k, r in roles.items() if k.startswith("SageMakerllama38bsmExecutionRole")]
    (statement,) = props(role)["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {"Fn::Join": ["", ["arn:aws:sagemaker:us-west-2:", {"Ref": "AWS::AccountId"}, ":*"]]}
        },
    }


def test_sagemaker_endpoint_has_no_api_key(inference_app: SynthesizedApp) -> None:
    outputs = serving_json(inference_app)["Outputs"]
    assert [k for k in outputs if k.startswith("ApiKeySecret")] == ["ApiKeySecretllama3D8b"]  # the EKS one only


def test_sagemaker_security_group_allows_no_inbound(inference_app: SynthesizedApp) -> None:
    groups = resources(sagemaker_template(inference_app), "AWS::EC2::SecurityGroup")
    (group,) = groups.values()
    assert "SecurityGroupIngress" not in props(group)
    assert [r["FromPort"] for r in props(group)["SecurityGroupEgress"]] == [443]


def test_each_backend_has_its_stack_and_no_stack_without_endpoints(synthesized: dict[str, SynthesizedApp]) -> None:
    for name, app in synthesized.items():
        backends = {e.backend for e in app.config.serving.endpoints}
        assert (app.platform.serving is not None) == ("eks" in backends), name
        assert (app.platform.sagemaker is not None) == ("sagemaker" in backends), name
    app = synthesized["inference-small"]
    assert app.platform.serving is not None
    assert app.platform.sagemaker is not None
    assert "AWS::SageMaker" not in json.dumps(serving_json(app))
    assert "Custom::AWSCDK-EKS" not in json.dumps(app.template_json(app.platform.sagemaker))
