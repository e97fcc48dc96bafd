"""train-job: TrainJobs with the queue label and topology request, and one-line refusals of
jobs that could never run."""

from __future__ import annotations

import pytest
import yaml

from neuron_platform.__main__ import main
from neuron_platform.admission import fits, queue_table, training_queue, training_queues, trainjob_pod_sets
from neuron_platform.capacity import plan_pool
from neuron_platform.config import PlatformConfig, load_config
from neuron_platform.k8s.training import neuron_training_runtime
from neuron_platform.train_jobs import TrainJobError, TrainJobRequest, build_train_job
from tests.conftest import REPO
from tests.k8s_schemas import validate

TRAINING = REPO / "config" / "examples" / "training-multinode.yaml"


@pytest.fixture(scope="module")
def config() -> PlatformConfig:
    return load_config(TRAINING)


def request(**overrides: object) -> TrainJobRequest:
    fields: dict[str, object] = {"name": "llama", "pool": "trn1-efa", "command": ("torchrun", "train.py")}
    fields.update(overrides)
    return TrainJobRequest(**fields)  # type: ignore[arg-type]


def topology_annotations(job: dict[str, object]) -> dict[str, str]:
    patches = job["spec"].get("runtimePatches", [])  # type: ignore[attr-defined]
    out: dict[str, str] = {}
    for patch in patches:
        for replicated in patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]:
            out.update(replicated["template"]["spec"]["template"]["metadata"]["annotations"])
    return out


def test_job_carries_the_queue_label_and_is_schema_valid(config: PlatformConfig) -> None:
    job = build_train_job(config, request())
    validate(job)
    assert job["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "neuron-trn1-efa"}
    assert job["metadata"]["namespace"] == config.training.namespace
    assert job["spec"]["trainer"]["numProcPerNode"] == 32


def test_the_job_train_job_prints_is_admitted_by_the_quota_arithmetic(config: PlatformConfig) -> None:
    job = build_train_job(config, request(nodes=4))
    plan = plan_pool(config.pool("trn1-efa"))  # type: ignore[arg-type]
    runtime = neuron_training_runtime(plan, image=job["spec"]["trainer"]["image"])
    assert fits(trainjob_pod_sets(job, runtime), training_queue(plan)) == []


@pytest.mark.parametrize(
    ("pool", "topology", "annotations"),
    [
        # trn1-efa: EFA, static capacity -> placed by network topology
        ("trn1-efa", None, {"kueue.x-k8s.io/podset-preferred-topology": "topology.k8s.aws/network-node-layer-3"}),
        ("trn1-efa", "required", {"kueue.x-k8s.io/podset-required-topology": "topology.k8s.aws/network-node-layer-3"}),
        ("trn1-efa", "none", {}),
        # trn1n-efa: EFA, nodes launched for jobs -> no topology request
        ("trn1n-efa", None, {}),
        ("trn1n-efa", "none", {}),
    ],
)
def test_topology_annotations_only_for_pools_placed_by_network_topology(
    config: PlatformConfig, pool: str, topology: str | None, annotations: dict[str, str]
) -> None:
    job = build_train_job(config, request(pool=pool, topology=topology))
    validate(job)
    assert topology_annotations(job) == annotations


def test_no_shipped_pool_without_efa_gets_a_topology_request() -> None:
    for path in [REPO / "config" / "default.yaml", *sorted((REPO / "config" / "examples").glob("*.yaml"))]:
        cfg = load_config(path)
        if not cfg.training.enabled:
            continue
        for pool in cfg.efa_training_pools:
            job = build_train_job(cfg, request(pool=pool.name))
            assert bool(topology_annotations(job)) == plan_pool(pool).network_topology, (path.name, pool.name)
            assert not topology_annotations(job) or pool.efa


@pytest.mark.parametrize(
    ("overrides", "option", "message"),
    [
        ({"nodes": 5}, "--nodes", "got 5; Kueue could never admit it (aws.amazon.com/neuron: the job asks 80, "),
        ({"nodes": 0}, "--nodes", "got 0; allowed: 1 to 4"),
        ({"pool": "trn1-dev"}, "--pool", "got 'trn1-dev', which has no training runtime"),
        ({"pool": "nope"}, "--pool", "got 'nope', which is not a configured pool"),
        ({"instance_type": "trn2.48xlarge"}, "--instance-type", "runs whole trn1.32xlarge nodes"),
        ({"namespace": "ml"}, "--namespace", "got ml; the queues and the training service account are in training"),
        ({"pool": "trn1n-efa", "topology": "required"}, "--topology", "pool trn1n-efa is not placed by network"),
    ],
)
def test_jobs_that_could_never_run_are_refused(
    config: PlatformConfig, overrides: dict[str, object], option: str, message: str
) -> None:
    with pytest.raises(TrainJobError) as err:
        build_train_job(config, request(**overrides))
    assert err.value.option == option
    assert message in str(err.value)


def test_refused_without_training(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    code = main(["train-job", "--config", "config/default.yaml", "--name", "j", "--pool", "inf2-inference", "--", "x"])
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "train-job: config/default.yaml: --config: training.enabled is false: "
        "this config deploys no Trainer, runtimes or queues"
    )


def test_cli_prints_the_job_or_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    base = ["train-job", "--config", str(TRAINING.relative_to(REPO)), "--name", "j", "--pool", "trn1-efa"]
    assert main([*base, "--nodes", "3", "--", "torchrun", "t.py"]) == 0
    job = yaml.safe_load(capsys.readouterr().out)
    assert job["spec"]["trainer"]["numNodes"] == 3
    assert job["spec"]["trainer"]["command"] == ["torchrun", "t.py"]
    assert main([*base, "--nodes", "9", "--", "x"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("train-job: config/examples/training-multinode.yaml: --nodes: got 9; ")
    assert line.endswith("allowed: 1 to 4")


def test_cli_rejects_an_unknown_topology(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train-job", "--name", "j", "--pool", "p", "--topology", "rack", "--", "x"])
    assert exit_.value.code == 2
    assert "invalid choice: 'rack'" in capsys.readouterr().err


TRAINING_DOC = (REPO / "docs" / "training.md").read_text()


def test_documented_queue_table_is_current(config: PlatformConfig) -> None:
    block = TRAINING_DOC.split("<!-- kueue-queues:start -->\n")[1].split("<!-- kueue-queues:end -->")[0]
    expected = queue_table(training_queues([plan_pool(p) for p in config.pools]))
    assert block.strip().splitlines() == expected, (
        "regenerate with: python -m neuron_platform queues --config config/examples/training-multinode.yaml"
    )


def test_documented_refusal_example_is_what_train_job_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    args = ["--config", "config/examples/training-multinode.yaml", "--name", "my-run", "--pool", "trn1-efa"]
    assert main(["train-job", *args, "--nodes", "5", "--", "torchrun", "train.py"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"```text\n{line}\n```" in TRAINING_DOC


def test_queues_prints_the_table_or_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["queues", "--config", "config/examples/training-multinode.yaml"]) == 0
    assert "| `neuron-trn1-efa` | trn1-efa | 4 x trn1.32xlarge (reserved first) |" in capsys.readouterr().out
    assert main(["queues", "--config", "config/default.yaml"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "queues: config/default.yaml: no training queues (training.enabled with an EFA training pool)"


def test_the_name_rule_is_the_trainjob_crds() -> None:
    from neuron_platform.train_jobs import TRAINJOB_NAME

    crd = yaml.safe_load(
        (REPO / "tests" / "schemas" / "kubeflow-trainer" / "trainer.kubeflow.org_trainjobs.yaml").read_text()
    )
    rules = [
        r["rule"]
        for v in crd["spec"]["versions"]
        for r in v["schema"]["openAPIV3Schema"].get("x-kubernetes-validations", [])
    ]
    assert f"self.metadata.name.matches('^{TRAINJOB_NAME.pattern}$')" in rules
    assert "size(self.metadata.name) <= 63" in rules
