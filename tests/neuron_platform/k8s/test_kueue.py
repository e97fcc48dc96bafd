"""Kueue objects against the vendored Kueue 0.19.2 CRDs, and the manager configuration
against Kueue's own configuration types."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from neuron_platform.admission import TOPOLOGY_LEVELS, TrainingQueue, training_queue, training_queues
from neuron_platform.capacity import plan_pool
from neuron_platform.config import load_config
from neuron_platform.k8s.helm_values import KUEUE_INTEGRATIONS, kueue_manager_config, kueue_values
from neuron_platform.k8s.kueue import admission_objects, cluster_queue, local_queue, network_topology, resource_flavor
from tests.conftest import ALL_CONFIGS, config_id
from tests.k8s_schemas import validate
from tests.pools import training_plan

UPSTREAM = Path(__file__).resolve().parents[2] / "upstream" / "kueue-config"


def queue(**overrides: object) -> TrainingQueue:
    return training_queue(training_plan(**overrides))


@pytest.mark.parametrize("path", [p for p in ALL_CONFIGS if load_config(p).training.enabled], ids=config_id)
def test_every_kueue_object_of_every_training_config_matches_its_crd(path: Path) -> None:
    config = load_config(path)
    queues = training_queues([plan_pool(p) for p in config.pools])
    objects = admission_objects(queues, namespace=config.training.namespace)
    assert objects
    for obj in objects:
        validate(obj)


def test_schema_check_rejects_a_misspelt_quota_field() -> None:
    broken = cluster_queue(queue(), namespace="default")
    resource = broken["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]
    resource["nominalQuotas"] = resource.pop("nominalQuota")
    with pytest.raises(Exception, match="nominalQuota"):
        validate(broken)


def test_topology_levels_are_the_network_layers_then_the_node() -> None:
    levels = [level["nodeLabel"] for level in network_topology()["spec"]["levels"]]
    assert levels == [
        "topology.k8s.aws/network-node-layer-1",
        "topology.k8s.aws/network-node-layer-2",
        "topology.k8s.aws/network-node-layer-3",
        "kubernetes.io/hostname",
    ]
    assert tuple(levels) == TOPOLOGY_LEVELS


def test_flavor_selects_the_pool_tolerates_neuron_and_names_the_topology_only_when_placed_by_it() -> None:
    dynamic = resource_flavor(queue())["spec"]
    assert dynamic["nodeLabels"] == {"neuron-platform/pool": "trn"}
    assert dynamic["tolerations"] == [{"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}]
    assert "topologyName" not in dynamic
    assert resource_flavor(queue(static_nodes=2))["spec"]["topologyName"] == "neuron-network"


def test_cluster_queue_covers_every_resource_in_order_and_serves_one_namespace() -> None:
    spec = cluster_queue(queue(), namespace="training")["spec"]
    (group,) = spec["resourceGroups"]
    (flavor,) = group["flavors"]
    assert [r["name"] for r in flavor["resources"]] == group["coveredResources"]
    assert spec["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "training"}}
    assert "cohortName" not in spec  # nothing borrowed, lent or preempted across pools


def test_local_queue_lives_in_the_training_namespace() -> None:
    assert local_queue(queue(), namespace="training")["metadata"] == {"name": "neuron-trn", "namespace": "training"}


def test_topology_object_only_when_a_pool_uses_it() -> None:
    kinds = [o["kind"] for o in admission_objects([queue()], namespace="default")]
    assert kinds == ["ResourceFlavor", "ClusterQueue", "LocalQueue"]
    kinds = [o["kind"] for o in admission_objects([queue(static_nodes=2)], namespace="default")]
    assert kinds == ["Topology", "ResourceFlavor", "ClusterQueue", "LocalQueue"]


# --- the manager configuration, judged by Kueue's configuration types ----------------------------


@cache
def go_structs() -> dict[str, dict[str, str]]:
    """struct name -> {json key: Go type} from the vendored configuration_types.go (its sha256
    checked against SOURCE.txt); inline (embedded) structs are merged into their parent."""
    source = (UPSTREAM / "configuration_types.go").read_bytes()
    (digest,) = re.findall(r"^([0-9a-f]{64})\s+configuration_types\.go$", (UPSTREAM / "SOURCE.txt").read_text(), re.M)
    assert hashlib.sha256(source).hexdigest() == digest
    structs: dict[str, dict[str, str]] = {}
    inline: dict[str, list[str]] = {}
    for name, body in re.findall(r"^type (\w+) struct \{\n(.*?)^\}", source.decode(), re.M | re.S):
        fields: dict[str, str] = {}
        for line in body.splitlines():
            line = line.strip()
            if line.startswith("//") or "`json:" not in line:
                continue
            match = re.match(r'([\w.]+)(?:\s+([^\s`]+))?\s+`json:"([^",]*)', line)
            assert match, line
            field, go_type, key = match.groups()
            if key == "":
                inline.setdefault(name, []).append(go_type or field)
            else:
                fields[key] = go_type
        structs[name] = fields
    for name, embedded in inline.items():
        for member in embedded:
            structs[name].update(structs.get(member, {}))
    return structs


def unknown_keys(value: Any, go_type: str, path: str = "") -> list[str]:
    """Key paths in ``value`` that Kueue's type ``go_type`` has no field for."""
    base = go_type.lstrip("*")
    if base.startswith("[]"):
        return [k for i, item in enumerate(value) for k in unknown_keys(item, base[2:], f"{path}[{i}]")]
    structs = go_structs()
    if base not in structs or not isinstance(value, dict):
        return []  # a scalar, a map, or a type from another package (not checked deeper)
    problems = []
    for key, item in value.items():
        if key in ("apiVersion", "kind") and base == "Configuration":
            continue
        if key not in structs[base]:
            problems.append(f"{path}.{key}".lstrip("."))
        else:
            problems += unknown_keys(item, structs[base][key], f"{path}.{key}")
    return problems


def test_every_key_of_the_manager_configuration_is_a_kueue_configuration_field() -> None:
    assert unknown_keys(kueue_manager_config(), "Configuration") == []


def test_the_configuration_check_catches_a_key_kueue_does_not_read() -> None:
    config = kueue_manager_config()
    config["waitForPodsReady"]["enable"] = True  # v1beta1's switch; v1beta2 has no such field
    config["integration"] = config.pop("integrations")
    assert unknown_keys(config, "Configuration") == ["waitForPodsReady.enable", "integration"]


def test_only_the_trainjob_integration_and_it_is_one_kueue_knows() -> None:
    config = kueue_manager_config()
    assert config["integrations"]["frameworks"] == ["trainer.kubeflow.org/trainjob"] == list(KUEUE_INTEGRATIONS)
    listed = re.findall(r'^\s*//\s+- "([^"]+)"$', (UPSTREAM / "configuration_types.go").read_text(), re.M)
    assert set(KUEUE_INTEGRATIONS) <= set(listed)


def test_the_chart_gets_the_configuration_as_one_yaml_string() -> None:
    values = kueue_values()
    assert yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"]) == kueue_manager_config()
    assert kueue_manager_config()["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
