"""First-run manifests: schema-valid, and the committed docs match the builders."""

from __future__ import annotations

import pytest
import yaml
from kubernetes_validate import ValidationError

from neuron_platform.config import load_config
from neuron_platform.k8s.workloads import efa_pair_pods, inf2_smoke_pod
from tests.conftest import DEFAULT_CONFIG, REPO
from tests.k8s_schemas import validate

DOCS = REPO / "docs" / "first-run"
# The images come from each pool's Neuron stack, as `first-run --config` prints them.
INF2_IMAGE = load_config(DEFAULT_CONFIG).pool_stack("inf2-inference").image("serving")
TRAINING_CONFIG = REPO / "config" / "examples" / "training-multinode.yaml"
TRN1_IMAGE = load_config(TRAINING_CONFIG).pool_stack("trn1-efa").image("training")


def test_inf2_smoke_pod() -> None:
    pod = inf2_smoke_pod("inf2-inference", INF2_IMAGE)
    validate(pod)
    assert pod["spec"]["containers"][0]["image"] == INF2_IMAGE
    assert "sdk2.28.0" in INF2_IMAGE  # the last SDK on which NxD Inference supports inf2
    spec = pod["spec"]
    assert spec["schedulerName"] == "my-scheduler"
    assert spec["containers"][0]["resources"]["limits"] == {"aws.amazon.com/neuron": "1"}
    assert spec["nodeSelector"] == {"neuron-platform/pool": "inf2-inference"}


@pytest.mark.parametrize(
    ("instance_type", "devices", "efa"), [("trn1.32xlarge", "16", "8"), ("trn1n.32xlarge", "16", "16")]
)
def test_efa_pair_requests_whole_nodes(instance_type: str, devices: str, efa: str) -> None:
    pods = efa_pair_pods("trn1-efa", TRN1_IMAGE, instance_type)
    assert len(pods) == 2
    for pod in pods:
        validate(pod)
        assert pod["spec"]["containers"][0]["resources"]["limits"] == {
            "aws.amazon.com/neuron": devices,
            "vpc.amazonaws.com/efa": efa,
        }


def test_efa_pair_refuses_types_without_efa() -> None:
    with pytest.raises(ValueError, match=r"inf2\.48xlarge has no EFA"):
        efa_pair_pods("p", TRN1_IMAGE, "inf2.48xlarge")


def test_core_schema_gate_catches_a_bad_pod() -> None:
    pod = inf2_smoke_pod("p", INF2_IMAGE)
    pod["spec"]["restartPolicy"] = 3
    with pytest.raises(ValidationError):
        validate(pod)


@pytest.mark.parametrize(
    ("file", "objects"),
    [
        ("inf2-smoke.yaml", [inf2_smoke_pod("inf2-inference", INF2_IMAGE)]),
        ("trn1-efa-pair.yaml", efa_pair_pods("trn1-efa", TRN1_IMAGE)),
    ],
)
def test_committed_first_run_manifests_are_current(file: str, objects: list[dict[str, object]]) -> None:
    committed = list(yaml.safe_load_all((DOCS / file).read_text()))
    assert committed == objects, f"regenerate docs/first-run/{file} with python -m neuron_platform first-run"
