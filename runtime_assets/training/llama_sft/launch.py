"""Entrypoint of the Llama SFT worked example, run in every pod of the TrainJob.

Kubeflow Trainer's torch runtime sets ``PET_NNODES``, ``PET_NPROC_PER_NODE``,
``PET_NODE_RANK``, ``PET_MASTER_ADDR`` and ``PET_MASTER_PORT``; this script checks the
inputs on the shared file system and the parallel layout, then runs NxD Training's
orchestrator under ``torchrun`` (wrapped in ``neuron_parallel_compile`` with
``--compile-only``, which extracts and compiles every graph in a 10-step run and fills
the compile cache, so the real run starts without compiling).

    python launch.py train --hf-model-dir /fsx/data/models/llama3-8b \\
        --checkpoint-dir /fsx/data/models/llama3-8b-nxdt-tp32 \\
        --data-dir /fsx/data/llama-sft/dataset --output-dir /fsx/data/llama-sft/run-1

    python launch.py convert --hf-model-dir /fsx/data/models/llama3-8b \\
        --checkpoint-dir /fsx/data/models/llama3-8b-nxdt-tp32 --tensor-parallel 32

Exit codes: 2 for a problem with the inputs (one line on stderr), otherwise the exit code
of the training or conversion process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG_DIR = HERE / "conf"
CONFIG_NAME = "llama3_8b_sft"
# Where the image puts NxD Training's examples (see Dockerfile); NXDT_EXAMPLES overrides it.
DEFAULT_NXDT_EXAMPLES = Path("/opt/nxdt/examples")
TORCHRUN_ENV = ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT")


class LaunchError(Exception):
    """A problem with the inputs, reported as one line."""


@dataclass(frozen=True)
class Topology:
    """Where this process sits in the job, from the Trainer's PET_* variables."""

    nodes: int
    procs_per_node: int
    node_rank: int
    master_addr: str
    master_port: int

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topology:
        missing = [name for name in TORCHRUN_ENV if not env.get(name)]
        if missing:
            raise LaunchError(
                f"missing {', '.join(missing)}; run this inside a TrainJob on a neuronx-<pool> runtime "
                "(the Trainer's torch plugin sets them)"
            )
        try:
            return cls(
                nodes=int(env["PET_NNODES"]),
                procs_per_node=int(env["PET_NPROC_PER_NODE"]),
                node_rank=int(env["PET_NODE_RANK"]),
                master_addr=env["PET_MASTER_ADDR"],
                master_port=int(env["PET_MASTER_PORT"]),
            )
        except ValueError as err:
            raise LaunchError(f"PET_* variables must be integers where numeric ({err})") from None


@dataclass(frozen=True)
class ParallelLayout:
    tensor_parallel: int
    data_parallel: int
    kv_replicator: int


def plan_layout(
    *, world_size: int, tensor_parallel: int, attention_heads: int, kv_heads: int, global_batch: int
) -> ParallelLayout:
    """Check that the model and batch split over the job's NeuronCores; explain when not."""
    if tensor_parallel < 1 or world_size % tensor_parallel:
        raise LaunchError(
            f"--tensor-parallel {tensor_parallel} does not divide the {world_size} NeuronCores of the job"
        )
    if attention_heads % tensor_parallel:
        raise LaunchError(
            f"--tensor-parallel {tensor_parallel} does not divide the model's {attention_heads} attention heads"
        )
    # Key/value heads are replicated up to the tensor-parallel degree when it is larger.
    if tensor_parallel % kv_heads and kv_heads % tensor_parallel:
        raise LaunchError(
            f"--tensor-parallel {tensor_parallel} and the model's {kv_heads} key-value heads must divide one another"
        )
    data_parallel = world_size // tensor_parallel
    if global_batch % data_parallel:
        raise LaunchError(f"global batch {global_batch} is not a multiple of the data-parallel size {data_parallel}")
    return ParallelLayout(tensor_parallel, data_parallel, max(1, tensor_parallel // kv_heads))


def read_model_config(hf_model_dir: Path) -> dict[str, int]:
    path = hf_model_dir / "config.json"
    if not path.is_file():
        raise LaunchError(f"{path}: not found; --hf-model-dir must hold the Hugging Face config.json and tokenizer")
    try:
        config = json.loads(path.read_text())
        heads = int(config["num_attention_heads"])
        return {
            "num_attention_heads": heads,
            "num_key_value_heads": int(config.get("num_key_value_heads", heads)),
            "num_hidden_layers": int(config["num_hidden_layers"]),
        }
    except (ValueError, KeyError, TypeError) as err:
        raise LaunchError(f"{path}: not a Llama config ({err!r})") from None


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise LaunchError(f"{path}: not found ({what})")
    return path


def train_command(
    args: argparse.Namespace, topology: Topology, env: Mapping[str, str]
) -> tuple[list[str], dict[str, str], Path]:
    """The command, environment and working directory for one node's training processes."""
    model = read_model_config(args.hf_model_dir)
    layout = plan_layout(
        world_size=topology.world_size,
        tensor_parallel=args.tensor_parallel,
        attention_heads=model["num_attention_heads"],
        kv_heads=model["num_key_value_heads"],
        global_batch=args.global_batch,
    )
    train = require_file(args.data_dir / "training.jsonl", "run prepare_data.py first")
    validation = require_file(args.data_dir / "validation.jsonl", "run prepare_data.py first")
    if not args.checkpoint_dir.is_dir():
        raise LaunchError(f"{args.checkpoint_dir}: not found; run 'launch.py convert' first")
    examples = Path(env.get("NXDT_EXAMPLES", DEFAULT_NXDT_EXAMPLES))
    orchestrator = require_file(examples / "training_orchestrator.py", "NxD Training examples in the image")
    overrides = {
        "trainer.devices": topology.procs_per_node,
        "trainer.num_nodes": topology.nodes,
        "trainer.max_steps": args.max_steps,
        "distributed_strategy.tensor_model_parallel_size": layout.tensor_parallel,
        "distributed_strategy.kv_replicator": layout.kv_replicator,
        "exp_manager.checkpoint_callback_params.model_parallel_size": layout.tensor_parallel,
        "exp_manager.explicit_log_dir": args.output_dir,
        "exp_manager.resume_from_checkpoint": args.checkpoint_dir,
        "data.train_dir": train,
        "data.val_dir": validation,
        "data.global_batch_size": args.global_batch,
        "data.tokenizer.type": args.hf_model_dir,
        "model.model_config": args.hf_model_dir / "config.json",
        "model.num_layers": model["num_hidden_layers"],
        # The runtime's S3 cache (NEURON_COMPILE_CACHE_URL) is shared by every job of the pool.
        "compiler_cache_url": env.get("NEURON_COMPILE_CACHE_URL") or args.output_dir / "neuron-cache",
    }
    command = [
        "torchrun",
        f"--nnodes={topology.nodes}",
        f"--nproc_per_node={topology.procs_per_node}",
        f"--node_rank={topology.node_rank}",
        f"--master_addr={topology.master_addr}",
        f"--master_port={topology.master_port}",
        str(orchestrator),
        f"--config-path={CONFIG_DIR}",
        f"--config-name={CONFIG_NAME}",
        *(f"{key}={value}" for key, value in overrides.items()),
    ]
    child_env = dict(env)
    child_env["COMPILE"] = "1" if args.compile_only else "0"
    child_env.setdefault("HYDRA_FULL_ERROR", "1")
    if args.compile_only:
        command = ["neuron_parallel_compile", *command]
    return command, child_env, examples


def convert_command(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[list[str], dict[str, str], Path]:
    """NxD Training's converter: a full Hugging Face checkpoint into tensor-parallel shards."""
    model = read_model_config(args.hf_model_dir)
    layout = plan_layout(
        world_size=args.tensor_parallel,
        tensor_parallel=args.tensor_parallel,
        attention_heads=model["num_attention_heads"],
        kv_heads=model["num_key_value_heads"],
        global_batch=1,
    )
    weights = require_file(args.hf_model_dir / "pytorch_model.bin", "one merged Hugging Face weights file")
    examples = Path(env.get("NXDT_EXAMPLES", DEFAULT_NXDT_EXAMPLES))
    converter = require_file(
        examples / "checkpoint_converter_scripts" / "checkpoint_converter.py", "NxD Training examples in the image"
    )
    command = [
        sys.executable,
        str(converter),
        "--model_style=hf",
        f"--input_dir={weights}",
        f"--output_dir={args.checkpoint_dir}",
        f"--config={args.hf_model_dir / 'config.json'}",
        "--save_xser=True",
        "--convert_from_full_state",
        f"--tp_size={layout.tensor_parallel}",
        "--pp_size=1",
        f"--n_layers={model['num_hidden_layers']}",
        f"--kv_size_multiplier={layout.kv_replicator}",
        f"--qkv_linear={model['num_key_value_heads'] < model['num_attention_heads']}",
    ]
    return command, dict(env), converter.parent


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Llama SFT with NxD Training on Trainium")
    sub = parser.add_subparsers(dest="action", required=True)
    for name in ("train", "convert"):
        p = sub.add_parser(name)
        p.add_argument(
            "--hf-model-dir", type=Path, required=True, help="config.json, tokenizer (and weights to convert)"
        )
        p.add_argument("--checkpoint-dir", type=Path, required=True, help="the converted NxD Training checkpoint")
        p.add_argument("--tensor-parallel", type=int, default=32)
        if name == "train":
            p.add_argument("--data-dir", type=Path, required=True, help="training.jsonl and validation.jsonl")
            p.add_argument("--output-dir", type=Path, required=True, help="logs and checkpoints of this run")
            p.add_argument("--max-steps", type=int, default=1000)
            p.add_argument("--global-batch", type=int, default=32)
            p.add_argument("--compile-only", action="store_true", help="neuron_parallel_compile pre-step")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    environ = dict(os.environ if env is None else env)
    try:
        if args.action == "train":
            topology = Topology.from_env(environ)
            command, child_env, cwd = train_command(args, topology, environ)
            if topology.node_rank == 0:
                print(f"launch: {topology.nodes} nodes x {topology.procs_per_node} NeuronCores", flush=True)
        else:
            command, child_env, cwd = convert_command(args, environ)
    except LaunchError as err:
        print(f"launch: {err}", file=sys.stderr)
        return 2
    print("launch: " + " ".join(command), flush=True)
    return subprocess.run(command, env=child_env, cwd=cwd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
