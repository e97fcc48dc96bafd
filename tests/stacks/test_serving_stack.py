"""Fine-grained assertions on the serving stack: EKS objects and SageMaker resources."""

from __future__ import annotations

import json
from typing import Any

import pytest

from neuron_platform import versions
from neuron_platform.serving.planner import plan
from tests.conftest import REPO, SynthesizedApp
from tests.helpers import manifests_by_name, props, resources


def serving_json(app: SynthesizedApp) -> dict[str, Any]:
    assert app.platform.serving is not None
    return app.template_json(app.platform.serving)


def objects(app: SynthesizedApp) -> dict[tuple[str, str], dict[str, Any]]:
    return manifests_by_name(serving_json(app))


def only(app: SynthesizedApp, type_name: str) -> dict[str, Any]:
    (item,) = resources(app.template(app.platform.serving), type_name).values()  # type: ignore[arg-type]
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
    assert env["HF_HUB_OFFLINE"] == "1"
    assert "HF_TOKEN" not in env
    (init,) = pod["initContainers"]
    assert init["image"] == versions.AWS_CLI_IMAGE
    script = init["command"][-1]
    assert f"/artifacts/{eks_plan.cache_key()}/ /models/compiled" in script
    assert "test -s /models/compiled/manifest.json" in script
    # Artifacts of another SDK stop the pod before vLLM: the init container checks the SDK line...
    assert """grep -q '"sdk": "2.28.0"' /models/compiled/manifest.json""" in script
    # ...and the serving container the engine and compiler, with its own Python, then execs vLLM.
    assert container["command"][2].startswith("python3 /opt/neuron-platform/check_artifacts.py /models/compiled && ")
    assert (env["NEURON_PLATFORM_SDK"], env["NEURON_PLATFORM_ENGINE"]) == ("2.28.0", "vllm-nxdi")
    assert env["NEURON_PLATFORM_NEURONX_CC"] == eks_plan.compiler
    models = next(m for m in container["volumeMounts"] if m["name"] == "models")
    assert models["readOnly"] is True  # a failed load cannot recompile over the artifacts
    checks = objects(inference_app)[("ConfigMap", "llama3-8b-checks")]
    assert (
        checks["data"]["check_artifacts.py"] == (REPO / "runtime_assets" / "serve" / "check_artifacts.py").read_text()
    )


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
    scaled = objs[("ScaledObject", "llama3-8b")]["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (3, 6)
    (trigger,) = scaled["triggers"]
    assert trigger["metadata"]["threshold"] == "4"
    assert trigger["metadata"]["awsRegion"] == "us-west-2"
    assert "vllm:num_requests_running" in trigger["metadata"]["query"]
    assert ("HorizontalPodAutoscaler", "llama3-8b") not in objs  # KEDA owns the HPA it creates


def test_pod_identity_reads_only_this_endpoints_artifacts(inference_app: SynthesizedApp, eks_plan: Any) -> None:
    associations = resources(inference_app.template(inference_app.platform.serving), "AWS::EKS::PodIdentityAssociation")  # type: ignore[arg-type]
    (association,) = associations.values()
    assert (props(association)["Namespace"], props(association)["ServiceAccount"]) == ("serving", "llama3-8b")
    policies = resources(inference_app.template(inference_app.platform.serving), "AWS::IAM::Policy")  # type: ignore[arg-type]
    (policy,) = [p for k, p in policies.items() if k.startswith("Eksllama38bArtifactRead")]
    statements = props(policy)["PolicyDocument"]["Statement"]
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert actions == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]
    assert f"/artifacts/{eks_plan.cache_key()}/*" in json.dumps(statements)


# --- SageMaker -----------------------------------------------------------------------------------


def test_sagemaker_model_uses_the_pinned_image_artifacts_and_isolation(inference_app: SynthesizedApp) -> None:
    model = props(only(inference_app, "AWS::SageMaker::Model"))
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
    config = props(only(inference_app, "AWS::SageMaker::EndpointConfig"))
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.inf2.24xlarge"
    assert variant["InitialInstanceCount"] == 1
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 3600
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 3600
    assert "KmsKeyId" in config
    assert props(only(inference_app, "AWS::SageMaker::Endpoint"))["EndpointName"] == "inf-small-llama3-8b-sm"


def test_sagemaker_autoscaling_tracks_concurrent_requests(inference_app: SynthesizedApp) -> None:
    target = props(only(inference_app, "AWS::ApplicationAutoScaling::ScalableTarget"))
    assert target["ResourceId"] == "endpoint/inf-small-llama3-8b-sm/variant/main"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    policy = props(only(inference_app, "AWS::ApplicationAutoScaling::ScalingPolicy"))
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    )
    assert tracking["TargetValue"] == 4


def test_sagemaker_security_group_allows_no_inbound(inference_app: SynthesizedApp) -> None:
    groups = resources(inference_app.template(inference_app.platform.serving), "AWS::EC2::SecurityGroup")  # type: ignore[arg-type]
    (group,) = groups.values()
    assert "SecurityGroupIngress" not in props(group)
    assert [r["FromPort"] for r in props(group)["SecurityGroupEgress"]] == [443]


def test_no_serving_stack_without_endpoints(synthesized: dict[str, SynthesizedApp]) -> None:
    for name, app in synthesized.items():
        assert (app.platform.serving is not None) == bool(app.config.serving.endpoints), name
