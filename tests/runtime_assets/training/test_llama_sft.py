"""runtime_assets/training/llama_sft: data preparation and the pod entrypoint.

A fake ``torchrun``, ``neuron_parallel_compile`` and NxD Training converter stand in for
the real ones; they record how they were called.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

EXAMPLE = REPO / "runtime_assets" / "training" / "llama_sft"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"llama_sft_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


prepare_data = _load("prepare_data")
launch = _load("launch")

LLAMA3_8B = {"num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32}
PET = {
    "PET_NNODES": "2",
    "PET_NPROC_PER_NODE": "32",
    "PET_NODE_RANK": "1",
    "PET_MASTER_ADDR": "llama-sft-node-0-0.llama-sft",
    "PET_MASTER_PORT": "29400",
}

# --- prepare_data -------------------------------------------------------------------


def _write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _dolly(n: int) -> list[dict[str, str]]:
    return [
        {"instruction": f"Question {i}?", "context": "Some context." if i % 2 else "", "response": f"Answer {i}."}
        for i in range(n)
    ]


def test_records_become_input_output_pairs() -> None:
    with_context = prepare_data.to_sft_record({"instruction": " Q? ", "context": "C.", "response": "A."}, 1)
    assert with_context == {"input": "### Instruction:\nQ?\n\n### Context:\nC.\n\n### Response:\n", "output": "A."}
    without = prepare_data.to_sft_record({"instruction": "Q?", "response": "A."}, 1)
    assert without["input"] == "### Instruction:\nQ?\n\n### Response:\n"


def test_split_is_complete_and_stable(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "dolly.jsonl", _dolly(400))
    first = prepare_data.prepare(source, tmp_path / "a", validation_fraction=0.1)
    second = prepare_data.prepare(source, tmp_path / "b", validation_fraction=0.1)
    assert first == second
    assert first.training + first.validation == 400
    assert 15 <= first.validation <= 70  # about 10 %
    for name in ("training.jsonl", "validation.jsonl"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    record = json.loads((tmp_path / "a" / "training.jsonl").read_text().splitlines()[0])
    assert set(record) == {"input", "output"}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "line 1: not JSON"),
        ([{"instruction": "Q?", "response": "A."}, {"instruction": "Q?"}], "line 2: missing or empty response"),
        (["[1, 2]"], "line 1: expected a JSON object"),
    ],
)
def test_bad_input_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[Any], message: str
) -> None:
    source = _write_jsonl(tmp_path / "in.jsonl", lines)
    code = prepare_data.main(["--source", str(source), "--output-dir", str(tmp_path / "out")])
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"prepare_data: {message}")


def test_too_few_records_for_both_splits(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "in.jsonl", _dolly(1))
    with pytest.raises(prepare_data.DataError, match="need both"):
        prepare_data.prepare(source, tmp_path / "out")


# --- layout ---------------------------------------------------------------------------


def test_two_trn1_nodes_at_tp32() -> None:
    layout = launch.plan_layout(world_size=64, tensor_parallel=32, attention_heads=32, kv_heads=8, global_batch=32)
    assert (layout.tensor_parallel, layout.data_parallel, layout.kv_replicator) == (32, 2, 4)
    layout = launch.plan_layout(world_size=64, tensor_parallel=8, attention_heads=32, kv_heads=8, global_batch=32)
    assert (layout.data_parallel, layout.kv_replicator) == (8, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tensor_parallel": 7}, "--tensor-parallel 7 does not divide the 64 NeuronCores of the job"),
        ({"tensor_parallel": 64}, "--tensor-parallel 64 does not divide the model's 32 attention heads"),
        ({"kv_heads": 3, "attention_heads": 48, "tensor_parallel": 16}, "must divide one another"),
        ({"tensor_parallel": 8, "global_batch": 12}, "global batch 12 is not a multiple of the data-parallel size 8"),
    ],
)
def test_impossible_layouts_are_explained(kwargs: dict[str, int], message: str) -> None:
    args = {"world_size": 64, "tensor_parallel": 32, "attention_heads": 32, "kv_heads": 8, "global_batch": 32} | kwargs
    with pytest.raises(launch.LaunchError, match=message.replace("(", r"\(")):
        launch.plan_layout(**args)


def test_topology_comes_from_the_trainer_variables() -> None:
    topology = launch.Topology.from_env(PET)
    assert topology.world_size == 64
    assert topology.node_rank == 1
    with pytest.raises(launch.LaunchError, match="missing PET_NODE_RANK"):
        launch.Topology.from_env({k: v for k, v in PET.items() if k != "PET_NODE_RANK"})


# --- the entrypoint with fake tools ---------------------------------------------------------


def _fake_tool(path: Path, record: Path, exit_code: int = 0, exec_rest: bool = False) -> None:
    """A program that appends its argv, cwd and COMPILE to ``record``; optionally runs argv[1:]."""
    body = f"""#!/usr/bin/env python3
import json, os, sys
with open({str(record)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv, "cwd": os.getcwd(), "compile": os.environ.get("COMPILE")}}) + "\\n")
"""
    body += "os.execvp(sys.argv[1], sys.argv[1:])\n" if exec_rest else f"sys.exit({exit_code})\n"
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, Any]:
    model = tmp_path / "fsx" / "models" / "llama3-8b"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(LLAMA3_8B))
    (model / "pytorch_model.bin").write_bytes(b"weights")
    checkpoint = tmp_path / "fsx" / "models" / "llama3-8b-nxdt-tp32"
    checkpoint.mkdir()
    data = tmp_path / "fsx" / "dataset"
    data.mkdir()
    for name in ("training.jsonl", "validation.jsonl"):
        (data / name).write_text('{"input": "q", "output": "a"}\n')
    examples = tmp_path / "nxdt" / "examples"
    (examples / "checkpoint_converter_scripts").mkdir(parents=True)
    (examples / "training_orchestrator.py").write_text("")
    record = tmp_path / "calls.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir / "torchrun", record, exit_code=0)
    _fake_tool(bin_dir / "neuron_parallel_compile", record, exec_rest=True)
    _fake_tool(examples / "checkpoint_converter_scripts" / "checkpoint_converter.py", record)
    env = {**PET, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "NXDT_EXAMPLES": str(examples)}
    common = ["--hf-model-dir", str(model), "--checkpoint-dir", str(checkpoint)]
    train = ["train", *common, "--data-dir", str(data), "--output-dir", str(tmp_path / "fsx" / "run-1")]
    return {
        "env": env,
        "record": record,
        "common": common,
        "train": train,
        "examples": examples,
        "data": data,
        "model": model,
    }


def _calls(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def _overrides(argv: list[str]) -> dict[str, str]:
    start = next(i for i, a in enumerate(argv) if a.startswith("--config-name=")) + 1
    return dict(a.split("=", 1) for a in argv[start:])


def test_train_runs_torchrun_with_the_job_layout(workspace: dict[str, Any]) -> None:
    env = workspace["env"] | {"NEURON_COMPILE_CACHE_URL": "s3://cache/neuron"}
    assert launch.main(workspace["train"], env=env) == 0
    (call,) = _calls(workspace["record"])
    argv = call["argv"]
    assert Path(argv[0]).name == "torchrun"
    assert argv[1:6] == [
        "--nnodes=2",
        "--nproc_per_node=32",
        "--node_rank=1",
        "--master_addr=llama-sft-node-0-0.llama-sft",
        "--master_port=29400",
    ]
    assert argv[6] == str(workspace["examples"] / "training_orchestrator.py")
    assert argv[7] == f"--config-path={EXAMPLE / 'conf'}"
    overrides = _overrides(argv)
    assert overrides["trainer.devices"] == "32"
    assert overrides["trainer.num_nodes"] == "2"
    assert overrides["distributed_strategy.tensor_model_parallel_size"] == "32"
    assert overrides["distributed_strategy.kv_replicator"] == "4"
    assert overrides["data.train_dir"] == str(workspace["data"] / "training.jsonl")
    assert overrides["model.model_config"] == str(workspace["model"] / "config.json")
    assert overrides["compiler_cache_url"] == "s3://cache/neuron"
    assert call["compile"] == "0"
    # NxD Training's orchestrator imports its sibling training.py: run from the examples dir.
    assert call["cwd"] == str(workspace["examples"])


def test_compile_only_wraps_the_same_run_in_neuron_parallel_compile(workspace: dict[str, Any]) -> None:
    assert launch.main([*workspace["train"], "--compile-only"], env=workspace["env"]) == 0
    outer, inner = _calls(workspace["record"])
    assert Path(outer["argv"][0]).name == "neuron_parallel_compile"
    assert outer["argv"][1] == "torchrun"
    assert Path(inner["argv"][0]).name == "torchrun"
    assert inner["compile"] == "1"


def test_every_override_names_a_key_of_the_recipe(workspace: dict[str, Any]) -> None:
    """Hydra rejects overrides of keys the config does not have."""
    launch.main(workspace["train"], env=workspace["env"])
    (call,) = _calls(workspace["record"])
    recipe = yaml.safe_load((EXAMPLE / "conf" / "llama3_8b_sft.yaml").read_text())
    for key in _overrides(call["argv"]):
        node: Any = recipe
        for part in key.split("."):
            assert isinstance(node, dict), key
            assert part in node, key
            node = node[part]


def test_training_failure_is_the_exit_code(workspace: dict[str, Any]) -> None:
    bin_dir = Path(workspace["env"]["PATH"].split(os.pathsep)[0])
    _fake_tool(bin_dir / "torchrun", workspace["record"], exit_code=3)
    assert launch.main(workspace["train"], env=workspace["env"]) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: (w["data"] / "training.jsonl").unlink(), "training.jsonl: not found (run prepare_data.py first)"),
        (lambda w: (w["model"] / "config.json").unlink(), "config.json: not found; --hf-model-dir must hold"),
        (lambda w: (w["examples"] / "training_orchestrator.py").unlink(), "NxD Training examples in the image"),
    ],
)
def test_missing_inputs_get_one_line(
    workspace: dict[str, Any], capsys: pytest.CaptureFixture[str], change: Any, message: str
) -> None:
    change(workspace)
    assert launch.main(workspace["train"], env=workspace["env"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("launch: ")
    assert message in line
    assert not workspace["record"].exists()


def test_outside_a_trainjob_says_so(workspace: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    env = {k: v for k, v in workspace["env"].items() if not k.startswith("PET_")}
    assert launch.main(workspace["train"], env=env) == 2
    assert "run this inside a TrainJob" in capsys.readouterr().err


def test_convert_shards_the_checkpoint_for_the_tensor_parallel_degree(workspace: dict[str, Any]) -> None:
    assert launch.main(["convert", *workspace["common"]], env=workspace["env"]) == 0
    (call,) = _calls(workspace["record"])
    args = dict(a.removeprefix("--").split("=", 1) for a in call["argv"][1:] if "=" in a)
    assert args["tp_size"] == "32"
    assert args["kv_size_multiplier"] == "4"
    assert args["n_layers"] == "32"
    assert args["qkv_linear"] == "True"  # grouped-query attention (8 KV heads for 32 query heads)
    assert args["input_dir"] == str(workspace["model"] / "pytorch_model.bin")
    assert "--convert_from_full_state" in call["argv"]
