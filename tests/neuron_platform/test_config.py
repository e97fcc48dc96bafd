"""Configuration validation: good files load, bad ones get one exact line each."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from neuron_platform.__main__ import main
from neuron_platform.config import ConfigError, load_config, parse_config
from tests.conftest import ALL_CONFIGS, config_id

BASE: dict[str, Any] = {
    "project": {"name": "neuron", "region": "us-east-1"},
    "network": {"zones": ["us-east-1a", "us-east-1b"]},
    "pools": [{"name": "inf2", "purpose": "inference", "instance_types": ["inf2.xlarge"]}],
}


def with_changes(*changes: tuple[str, Any]) -> dict[str, Any]:
    """BASE with dotted-path changes applied; value ``...`` deletes the key."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes:
        *parents, leaf = dotted.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return data


def run_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["config", "validate", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=config_id)
def test_shipped_configs_are_valid(path: Path) -> None:
    load_config(path)


def test_defaults_are_filled_in() -> None:
    config = parse_config(BASE)
    assert config.network.vpc_cidr == "10.0.0.0/16"
    assert config.network.private_subnet_prefix == 18
    assert config.network.nat_gateways == 1
    assert config.network.flow_log_retention_days == 365
    assert config.project.retain_data_on_destroy is True
    assert config.pools[0].efa is False
    # Training gets a namespace of its own (Pod Security baseline, default-deny policies).
    assert config.training.namespace == "training"


@pytest.mark.parametrize("name", ["kube-system", "neuron-monitor", "kueue-system"])
def test_training_may_not_share_a_system_namespace(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(with_changes(("training", {"namespace": name})))
    assert info.value.lines[0].startswith(f"training.namespace: got {name!r}; allowed: a namespace of its own")


BAD_DOCUMENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown-key",
        with_changes(("network.nat_gateway", 2)),
        "network.nat_gateway: unknown key; allowed keys here: zones, vpc_cidr, private_subnet_prefix, "
        "public_subnet_prefix, nat_gateways, interface_endpoints, flow_log_retention_days, secondary_cidr, "
        "secondary_subnet_prefix, existing_vpc",
    ),
    (
        "unknown-top-level-key",
        with_changes(("clusters", {})),
        "clusters: unknown key; allowed keys here: project, network, cluster, pools, training, compile, serving, operations",
    ),
    (
        "wrong-type",
        with_changes(("network.nat_gateways", "two")),
        "network.nat_gateways: got 'two' (string); expected an integer",
    ),
    (
        "bool-is-not-int",
        with_changes(("network.private_subnet_prefix", True)),
        "network.private_subnet_prefix: got True (boolean); expected an integer",
    ),
    (
        "negative-count",
        with_changes(("network.nat_gateways", -1)),
        "network.nat_gateways: got -1; allowed: 1 or more",
    ),
    (
        "more-nat-than-zones",
        with_changes(("network.nat_gateways", 3)),
        "network.nat_gateways: got 3; allowed: 1 to 2 (one per zone at most)",
    ),
    (
        "bad-cidr",
        with_changes(("network.vpc_cidr", "10.0.0.1/16")),
        "network.vpc_cidr: got '10.0.0.1/16'; expected an IPv4 CIDR block such as 10.0.0.0/16 "
        "(10.0.0.1/16 has host bits set)",
    ),
    (
        "public-cidr",
        with_changes(("network.vpc_cidr", "8.8.0.0/16")),
        "network.vpc_cidr: got '8.8.0.0/16'; allowed: a block inside 10.0.0.0/8, 172.16.0.0/12, "
        "192.168.0.0/16 or 100.64.0.0/10",
    ),
    (
        "overlapping-cidrs",
        with_changes(("network.vpc_cidr", "100.64.0.0/16"), ("network.secondary_cidr", "100.64.128.0/17")),
        "network.secondary_cidr: got '100.64.128.0/17'; overlaps network.vpc_cidr 100.64.0.0/16; "
        "allowed: a non-overlapping block",
    ),
    (
        "secondary-outside-cgnat",
        with_changes(("network.secondary_cidr", "10.1.0.0/16")),
        "network.secondary_cidr: got '10.1.0.0/16'; allowed: a /16 to /24 block inside 100.64.0.0/10",
    ),
    (
        "subnets-do-not-fit",
        with_changes(("network.zones", ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"])),
        "network.private_subnet_prefix: got 18; the subnets need 66560 addresses but network.vpc_cidr has 65536; "
        "allowed: 19 or more, or a larger network.vpc_cidr",
    ),
    (
        "zone-not-in-region",
        with_changes(("network.zones", ["us-east-1a", "us-west-2b"])),
        "network.zones[1]: got 'us-west-2b'; allowed in us-east-1: us-east-1a, us-east-1b, us-east-1c, "
        "us-east-1d, us-east-1e, us-east-1f",
    ),
    (
        "duplicate-zone",
        with_changes(("network.zones", ["us-east-1a", "us-east-1a"])),
        "network.zones: got ['us-east-1a', 'us-east-1a']; each zone may appear once",
    ),
    (
        "one-zone",
        with_changes(("network.zones", ["us-east-1a"])),
        "network.zones: got 1 item(s); allowed: at least 2",
    ),
    (
        "unknown-region",
        with_changes(("project.region", "us-west-1")),
        "project.region: got 'us-west-1'; allowed: a region that offers a Neuron family: ap-northeast-1, "
        "ap-south-1, ap-southeast-1, ap-southeast-2, eu-central-1, eu-north-1, eu-west-1, eu-west-3, sa-east-1, "
        "us-east-1, us-east-2, us-west-2",
    ),
    (
        "family-not-in-region",
        with_changes(("pools.0.instance_types", ["trn2.48xlarge"])),
        "pools[0].instance_types[0]: trn2.48xlarge is not offered in us-east-1; regions with trn2: us-east-2",
    ),
    (
        "unknown-instance-type",
        with_changes(("pools.0.instance_types", ["inf2.xlarge", "inf3.xlarge"])),
        "pools[0].instance_types[1]: got 'inf3.xlarge'; allowed: inf2.xlarge, inf2.8xlarge, inf2.24xlarge, "
        "inf2.48xlarge, trn1.2xlarge, trn1.32xlarge, trn1n.32xlarge, trn2.48xlarge",
    ),
    (
        "mixed-families",
        with_changes(("pools.0.instance_types", ["inf2.xlarge", "trn1.2xlarge"])),
        "pools[0].instance_types: got ['inf2.xlarge', 'trn1.2xlarge']; allowed: instance types of one family per pool",
    ),
    (
        "efa-without-efa-hardware",
        with_changes(("pools.0.efa", True), ("pools.0.zone", "us-east-1a")),
        "pools[0].instance_types[0]: inf2.xlarge has no EFA interface; allowed with efa: true: trn1.32xlarge, "
        "trn1n.32xlarge, trn2.48xlarge",
    ),
    (
        "efa-pool-without-zone",
        with_changes(("pools.0.instance_types", ["trn1.32xlarge"]), ("pools.0.efa", True)),
        "pools[0].zone: missing; an EFA pool must be pinned to one zone (cluster placement group)",
    ),
    (
        "pool-zone-not-in-network",
        with_changes(("pools.0.zone", "us-east-1c")),
        "pools[0].zone: got 'us-east-1c'; allowed: one of network.zones: us-east-1a, us-east-1b",
    ),
    (
        "bad-purpose",
        with_changes(("pools.0.purpose", "serving")),
        "pools[0].purpose: got 'serving'; allowed: 'training' or 'inference'",
    ),
    (
        "bad-project-name",
        with_changes(("project.name", "Neuron_1")),
        "project.name: got 'Neuron_1'; allowed: 1-24 lowercase letters, digits and '-', starting with a letter "
        "and not ending with '-'",
    ),
    (
        "missing-required",
        with_changes(("project.region", ...)),
        "project.region: required key is missing",
    ),
    (
        "bad-retention",
        with_changes(("network.flow_log_retention_days", 100)),
        "network.flow_log_retention_days: got 100; allowed: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, "
        "545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
    ),
    (
        "existing-vpc-with-create-only-key",
        with_changes(
            ("network.nat_gateways", 2),
            (
                "network.existing_vpc",
                {
                    "vpc_id": "vpc-0123456789abcdef0",
                    "vpc_cidr": "10.0.0.0/16",
                    "private_subnet_ids": ["subnet-0a", "subnet-0b"],
                },
            ),
        ),
        "network.nat_gateways: only applies when the stack creates the VPC; remove it or remove network.existing_vpc",
    ),
    (
        "existing-vpc-subnet-count",
        with_changes(
            (
                "network.existing_vpc",
                {
                    "vpc_id": "vpc-0123456789abcdef0",
                    "vpc_cidr": "10.0.0.0/16",
                    "private_subnet_ids": ["subnet-0a", "subnet-0b", "subnet-0c"],
                },
            ),
        ),
        "network.existing_vpc.private_subnet_ids: got 3 subnet ids; allowed: exactly one per zone in network.zones (2)",
    ),
    (
        "duplicate-pool-names",
        with_changes(("pools", [BASE["pools"][0], BASE["pools"][0]])),
        "pools[1].name: got 'inf2'; pool names must be unique",
    ),
    (
        "training-without-efa-pool",
        with_changes(("training", {"enabled": True})),
        "training.enabled: got true, but no pool has purpose: training and efa: true; add one (multi-node "
        "training runs on EFA pools)",
    ),
    (
        "bad-compile-cache-url",
        with_changes(("training", {"compile_cache_url": "bucket/prefix"})),
        "training.compile_cache_url: got 'bucket/prefix'; allowed: an S3 URL like s3://my-bucket/neuron-cache",
    ),
    (
        "lustre-size",
        with_changes(("training", {"shared_storage": {"storage_gib": 3600}})),
        "training.shared_storage.storage_gib: got 3600; allowed: 1200, or a multiple of 2400 up to 2400000 "
        "(FSx for Lustre PERSISTENT_2 sizes)",
    ),
    (
        "lustre-throughput",
        with_changes(("training", {"shared_storage": {"throughput_mb_per_tib": 200}})),
        "training.shared_storage.throughput_mb_per_tib: got 200; allowed: 125, 250, 500, 1000",
    ),
    (
        "data-bucket-name",
        with_changes(("training", {"shared_storage": {"data_bucket": "s3://my-bucket"}})),
        "training.shared_storage.data_bucket: got 's3://my-bucket'; allowed: an S3 bucket name (3-63 lowercase "
        "letters, digits, . and -)",
    ),
    (
        "training-in-the-default-namespace",
        with_changes(("training", {"namespace": "default"})),
        "training.namespace: got 'default'; allowed: a namespace of its own (e.g. training), not one Kubernetes or "
        "the platform already uses (default, keda, kube-node-lease, kube-public, kube-system, kubeflow-system, "
        "kueue-system, neuron-healthcheck-system, neuron-monitor): the platform creates it with its Pod Security "
        "level and network policies",
    ),
    (
        "shared-storage-without-training",
        with_changes(("training", {"shared_storage": {"enabled": True}})),
        "training.shared_storage.enabled: got true; allowed only with training.enabled: true",
    ),
    (
        "shared-storage-across-zones",
        with_changes(
            (
                "pools",
                [
                    {
                        "name": f"trn-{z}",
                        "purpose": "training",
                        "instance_types": ["trn1.32xlarge"],
                        "efa": True,
                        "zone": z,
                    }
                    for z in ("us-east-1a", "us-east-1b")
                ],
            ),
            ("training", {"enabled": True, "shared_storage": {"enabled": True}}),
        ),
        "training.shared_storage.enabled: got true, but the EFA training pools span zones us-east-1a, us-east-1b; "
        "allowed: pools in one zone (the file system sits in the zone of the nodes that read it)",
    ),
    (
        "bad-alarm-email",
        with_changes(("operations", {"alarm_emails": ["oncall@example.com", "oncall"]})),
        "operations.alarm_emails[1]: got 'oncall'; allowed: an email address",
    ),
    (
        "bad-model-bucket",
        with_changes(("compile", {"model_buckets": ["My_Models"]})),
        "compile.model_buckets[0]: got 'My_Models'; allowed: an S3 bucket name (3-63 lowercase letters, digits, . and -)",
    ),
    (
        "unknown-compile-machine",
        with_changes(("compile", {"instance_types": ["r7i.4xlarge", "m7i.large"]})),
        "compile.instance_types: got 'm7i.large'; allowed: r7i.2xlarge, r7i.4xlarge, r7i.8xlarge, r7i.12xlarge, "
        "r7i.16xlarge, r7i.24xlarge",
    ),
    (
        "endpoints-without-compile",
        with_changes(
            (
                "serving",
                {
                    "endpoints": [
                        {
                            "name": "llama",
                            "backend": "sagemaker",
                            "model": {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "v1"},
                            "target": "inf2",
                            "batch_size": 4,
                            "sequence_length": 4096,
                            "tensor_parallel_size": 8,
                        }
                    ]
                },
            ),
        ),
        "serving.endpoints: endpoints load compiled artifacts; set compile.enabled: true",
    ),
    (
        "endpoint-on-a-training-pool",
        with_changes(
            ("pools", [{"name": "trn", "purpose": "training", "instance_types": ["trn1.32xlarge"]}]),
            ("compile", {"enabled": True}),
            (
                "serving",
                {
                    "endpoints": [
                        {
                            "name": "llama",
                            "backend": "eks",
                            "pool": "trn",
                            "model": {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "v1"},
                            "target": "trn1",
                            "batch_size": 4,
                            "sequence_length": 4096,
                            "tensor_parallel_size": 8,
                        }
                    ]
                },
            ),
        ),
        "serving.endpoints[0].pool: got 'trn'; allowed: an inference pool: none configured",
    ),
    (
        "scaling-eks-endpoint-without-metrics",
        with_changes(
            ("pools", [{"name": "inf2", "purpose": "inference", "instance_types": ["inf2.48xlarge"]}]),
            ("compile", {"enabled": True}),
            ("operations", {"prometheus": {"enabled": False}}),
            (
                "serving",
                {
                    "endpoints": [
                        {
                            "name": "llama",
                            "backend": "eks",
                            "pool": "inf2",
                            "model": {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "v1"},
                            "target": "inf2",
                            "batch_size": 4,
                            "sequence_length": 4096,
                            "tensor_parallel_size": 8,
                            "replicas": {"min": 1, "max": 3},
                        }
                    ]
                },
            ),
        ),
        "serving.endpoints[0].replicas.max: got 3; EKS endpoints scale on vLLM metrics from the Prometheus "
        "workspace; allowed: 1 (replicas.min) while operations.prometheus.enabled is false",
    ),
    (
        "reserved-tag-key",
        with_changes(("project.tags", {"aws:owner": "me"})),
        "project.tags: tag key 'aws:owner' must be 1-128 characters and not start with 'aws:'",
    ),
    (
        "serving-namespace-reserved",
        with_changes(("serving", {"namespace": "kube-system"})),
        "serving.namespace: got 'kube-system'; allowed: a namespace of its own (e.g. serving), not one of default, "
        "keda, kube-node-lease, kube-public, kube-system, kubeflow-system, kueue-system, neuron-compile, "
        "neuron-healthcheck-system, neuron-monitor",
    ),
    (
        "static-nodes-on-inference",
        with_changes(("pools.0.static_nodes", 2)),
        "pools[0].static_nodes: got 2; allowed only on training pools (inference pools scale with traffic)",
    ),
    (
        "static-nodes-above-max",
        with_changes(
            ("pools", [{"name": "trn", "purpose": "training", "instance_types": ["trn1.2xlarge"], "static_nodes": 5}])
        ),
        "pools[0].static_nodes: got 5; allowed: at most max_nodes (4)",
    ),
]


@pytest.mark.parametrize(
    ("doc", "expected"), [(d, e) for _, d, e in BAD_DOCUMENTS], ids=[i for i, _, _ in BAD_DOCUMENTS]
)
def test_bad_config_gets_one_exact_line(
    doc: dict[str, Any], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, err = run_cli(path, capsys)
    assert code == 2
    assert err.splitlines() == [f"config error: {path}: {expected}"]


BAD_FILES: list[tuple[str, str | None, str]] = [
    ("missing-file", None, "file not found"),
    (
        "empty-file",
        "",
        "file is empty; expected a mapping with keys: project, network, cluster, pools, training, compile, serving, operations",
    ),
    (
        "comments-only",
        "# nothing here\n",
        "file is empty; expected a mapping with keys: project, network, cluster, pools, training, compile, serving, operations",
    ),
    (
        "invalid-yaml",
        "project:\n  name: neuron\n   region: us-east-1\n",
        "invalid YAML at line 3, column 10: mapping values are not allowed here",
    ),
    (
        "top-level-list",
        "- project\n",
        "top level is a list; expected a mapping with keys: project, network, cluster, pools, training, compile, serving, operations",
    ),
    (
        "duplicate-key",
        "project: {name: a, region: us-east-1}\nnetwork: {zones: [us-east-1a, us-east-1b]}\nproject: {}\n",
        "invalid YAML at line 3, column 1: duplicate key 'project'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD_FILES], ids=[i for i, _, _ in BAD_FILES])
def test_bad_file_gets_one_exact_line(
    text: str | None, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    if text is not None:
        path.write_text(text)
    code, err = run_cli(path, capsys)
    assert code == 2
    assert err.splitlines() == [f"config error: {path}: {expected}"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    doc = with_changes(("network.nat_gateways", -1), ("project.name", "X"))
    with pytest.raises(ConfigError) as info:
        parse_config(doc, source="c.yaml")
    assert len(info.value.lines) == 2
    assert all("\n" not in line for line in info.value.lines)


def test_module_entry_point_runs_as_a_process(tmp_path: Path) -> None:
    """`python -m neuron_platform` end to end: exit code and stderr, no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_changes(("network.nat_gateways", 0))))
    result = subprocess.run(
        [sys.executable, "-m", "neuron_platform", "config", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"config error: {bad}: network.nat_gateways: got 0; allowed: 1 or more"]


def test_validate_reports_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    path = ALL_CONFIGS[0]
    assert main(["config", "validate", str(path)]) == 0
    assert capsys.readouterr().out == (f"ok: {path}: project neuron in us-east-1, pools: inf2-inference (inf2)\n")


def test_show_prints_the_resolved_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert main(["config", "show", str(path)]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["network"]["vpc_cidr"] == "10.0.0.0/16"
    assert shown["network"]["existing_vpc"] is None


def test_a_certificate_from_another_region_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import REPO

    doc = yaml.safe_load((REPO / "config" / "examples" / "inference-small.yaml").read_text())
    (index, endpoint) = next(
        (i, e) for i, e in enumerate(doc["serving"]["endpoints"]) if e.get("backend", "eks") == "eks"
    )
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-000000000000"
    endpoint["certificate_arn"] = arn
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, err = run_cli(path, capsys)
    assert code == 2
    assert err.splitlines() == [
        f"config error: {path}: serving.endpoints[{index}].certificate_arn: got {arn!r} (region us-east-1); "
        f"allowed: a certificate in project.region {doc['project']['region']} (the load balancer's region)"
    ]
