"""neuron-monitor: the SDK's own DaemonSet, changed only where the platform must."""

from __future__ import annotations

import copy
import hashlib
import re

from neuron_platform import facts
from neuron_platform.k8s.neuron_monitor import (
    UPSTREAM_MANIFEST,
    neuron_monitor_daemonset,
    neuron_monitor_namespace,
    upstream_daemonset,
)
from tests.k8s_schemas import validate


def test_the_vendored_manifest_is_the_upstream_file() -> None:
    source = (UPSTREAM_MANIFEST.parent / "SOURCE.txt").read_text()
    digests = re.findall(r"sha256\s+:\s+([0-9a-f]{64})", source)
    files = sorted(p for p in UPSTREAM_MANIFEST.parent.iterdir() if p.name != "SOURCE.txt")
    assert len(digests) == len(files) == 3
    for path in files:
        assert hashlib.sha256(path.read_bytes()).hexdigest() in digests, path.name


def test_only_the_toleration_the_token_and_the_instance_types_differ_from_upstream() -> None:
    ours = neuron_monitor_daemonset(sorted(facts.INSTANCE_TYPES))
    upstream = copy.deepcopy(upstream_daemonset())
    pod, theirs = ours["spec"]["template"]["spec"], upstream["spec"]["template"]["spec"]
    assert "tolerations" not in theirs  # upstream cannot run on tainted Neuron nodes
    assert pod.pop("tolerations") == [{"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}]
    assert "automountServiceAccountToken" not in theirs
    assert pod.pop("automountServiceAccountToken") is False  # it never calls the Kubernetes API
    ours_terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    their_terms = theirs["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    ours_types = ours_terms[0]["matchExpressions"][1]["values"]
    their_types = their_terms[0]["matchExpressions"][1]["values"]
    assert ours_types[: len(their_types)] == their_types
    assert set(ours_types) == set(their_types) | set(facts.INSTANCE_TYPES)
    assert "trn2.48xlarge" not in their_types
    ours_terms[0]["matchExpressions"][1]["values"] = their_types
    assert ours == upstream  # image, command, args, port, resources, privilege: exactly upstream's
    assert pod["containers"][0]["image"] == "public.ecr.aws/neuron/neuron-monitor:1.3.0"


def test_objects_are_schema_valid_and_the_namespace_is_the_manifests() -> None:
    validate(neuron_monitor_daemonset(sorted(facts.INSTANCE_TYPES)))
    validate(neuron_monitor_namespace())
    assert neuron_monitor_namespace()["metadata"]["name"] == upstream_daemonset()["metadata"]["namespace"]
