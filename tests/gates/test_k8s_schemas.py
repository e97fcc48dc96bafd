"""Every Kubernetes object the synthesized apps apply validates against its schema."""

from __future__ import annotations

import pytest

from neuron_platform.capacity import plan_pool
from neuron_platform.config import PlatformConfig
from stacks.compile_stack import cluster_compiled_endpoints
from tests.conftest import SynthesizedApp
from tests.helpers import manifests
from tests.k8s_schemas import KEDA_GROUP, SchemaError, crd_schemas, validate, validate_keda


def test_vendored_crds_are_the_karpenter_release() -> None:
    assert ("karpenter.sh/v1", "NodePool") in crd_schemas()
    assert ("karpenter.k8s.aws/v1", "EC2NodeClass") in crd_schemas()


def test_keda_objects_are_checked_against_keda_schemas() -> None:
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x", "namespace": "serving"},
        "spec": {"scaleTargetRef": {"name": "x"}, "triggers": [{"type": "prometheus", "metadata": {}}]},
    }
    validate(scaled)
    with pytest.raises(SchemaError, match="minReplicaCount must be integer"):
        validate({**scaled, "spec": {**scaled["spec"], "minReplicaCount": "1"}})
    # A misspelt field: the API server would drop it without a word.
    with pytest.raises(SchemaError, match=r"behaviour.* does not exist in type 'IFallback'"):
        validate(
            {
                **scaled,
                "spec": {**scaled["spec"], "fallback": {"failureThreshold": 3, "replicas": 1, "behaviour": "static"}},
            }
        )
    with pytest.raises(SchemaError, match="allowed values"):
        validate(
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ClusterTriggerAuthentication",
                "metadata": {"name": "a"},
                "spec": {"podIdentity": {"provider": "aws-irsa"}},
            }
        )


def test_every_applied_object_is_schema_valid(synthesized: dict[str, SynthesizedApp]) -> None:
    checked = 0
    keda_objects = []
    for app in synthesized.values():
        for stack in app.platform.stacks:
            for obj in manifests(app.template_json(stack)):
                if obj["apiVersion"].startswith(KEDA_GROUP):
                    keda_objects.append(obj)  # one compiler run for all of them
                else:
                    validate(obj)
                checked += 1
    assert keda_objects
    validate_keda(keda_objects)

    # Every object the platform applies, by where it comes from.
    def expected_objects(config: PlatformConfig) -> int:
        # The Neuron chart's NPD namespace, neuron-monitor's namespace and DaemonSet; default-deny
        # and DNS/HTTPS network policies for both; EC2NodeClass + NodePool per pool.
        count = 7 + 2 * len(config.pools)
        # Scrape allows into neuron-monitor and the health check when metrics are collected.
        count += 2 if config.collects_metrics else 0
        training = config.training
        if training.enabled:
            # The training service account; NodeOverlay + ClusterTrainingRuntime per EFA training pool.
            count += 1 + 2 * len(config.efa_training_pools)
            # Kueue: a ResourceFlavor, ClusterQueue and LocalQueue per EFA training pool, and
            # the network Topology when a pool is placed by it.
            count += 3 * len(config.efa_training_pools)
            count += 1 if any(plan_pool(p).network_topology for p in config.efa_training_pools) else 0
            # The training namespace (never default), its four network policies, and the
            # kubeflow-system and kueue-system namespaces created before their charts.
            count += 1 + 4 + 2
            count += 2 if training.shared_storage.enabled else 0
        # Per EKS endpoint: ServiceAccount, the check ConfigMap, Deployment, Service, PDB,
        # Ingress, and a KEDA ScaledObject when it scales; the serving namespace with four
        # network policies; a namespaced TriggerAuthentication when endpoints scale on metrics;
        # OIDC sign-in adds a Role and RoleBinding for the client secret.
        eks_endpoints = config.eks_endpoints
        count += 6 * len(eks_endpoints) + (5 if eks_endpoints else 0)
        count += sum(1 for e in eks_endpoints if e.replicas.max > e.replicas.min)
        scaling = any(e.replicas.max > e.replicas.min for e in eks_endpoints)
        count += 1 if config.collects_metrics and scaling else 0
        count += 2 * sum(1 for e in eks_endpoints if e.authentication is not None and e.authentication.type == "oidc")
        # On-pool compiles: the compile namespace, its service account and three network policies.
        count += 5 if cluster_compiled_endpoints(config) else 0
        # The managed Prometheus collector's ClusterRole and binding; KEDA's namespace where
        # EKS endpoints read the workspace.
        count += 2 if config.collects_metrics else 0
        count += 1 if config.collects_metrics and eks_endpoints else 0
        return count

    expected = sum(expected_objects(app.config) for app in synthesized.values())
    assert checked == expected


def test_the_compile_job_templates_are_schema_valid(synthesized: dict[str, SynthesizedApp]) -> None:
    """The Jobs the cluster step creates (templates in its Lambda asset, filled per run)."""
    import json

    from neuron_platform.k8s.compile import PLACEHOLDERS

    checked = 0
    for app in synthesized.values():
        runner = app.platform.serving.cluster_compile if app.platform.serving else None
        if runner is None:
            continue
        asset = next(app.outdir.glob("asset.*/job_templates.json"))
        for endpoint, template in json.loads(asset.read_text()).items():
            assert endpoint in runner.endpoints
            job = json.loads(
                json.dumps(template["job"])
                .replace(PLACEHOLDERS["job_name"], "compile-0123")
                .replace(PLACEHOLDERS["image"], "123456789012.dkr.ecr.us-west-2.amazonaws.com/r:" + template["tag"])
            )
            validate(job)
            checked += 1
    assert checked >= 1
