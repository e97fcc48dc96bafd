"""The resolved Neuron matrix of a configuration: per pool and endpoint, what runs where.

Plain Python. ``python -m neuron_platform versions --config PATH`` prints it, and the
docs/neuron-stack.md's matrix table is this module's Markdown for the shipped configs
(a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from neuron_platform.config import PlatformConfig
from neuron_platform.neuron_data import load, version_key
from neuron_platform.neuron_stack import ami_problems


@dataclass(frozen=True)
class MatrixRow:
    where: str  # "pool trn1-efa" or "endpoint llama3-8b-sm (sagemaker)"
    family: str
    sdk: str
    ami: str
    driver: str
    role: str
    image: str
    runtime: str
    verdict: str


def matrix(config: PlatformConfig) -> list[MatrixRow]:
    data = load()
    rows: list[MatrixRow] = []
    for pool in config.pools:
        stack = config.pool_stack(pool.name)
        for workload in stack.workloads:
            if workload.role == "compile":
                continue  # the serving image: one row says "serving+compile"
            broken = ami_problems(data, stack.ami, [workload], stack.family)
            verdict = "BROKEN: " + broken[0] if broken else "runs (no documented incompatibility)"
            if not broken and version_key(stack.ami.driver) < version_key(stack.sdk.driver):
                # Not a rule, but worth seeing: the newest AMI the data has predates this SDK's driver.
                verdict += f"; the AMI's driver is older than SDK {stack.sdk.version}'s own {stack.sdk.driver}"
            if workload.role == "training" and stack.nxdt_version:
                ref = stack.nxdt_examples.commit[:12] if stack.nxdt_examples else "no public commit"
                verdict += f"; NxD Training {stack.nxdt_version}, examples {ref}"
            rows.append(
                MatrixRow(
                    where=f"pool {pool.name}",
                    family=stack.family.value,
                    sdk=stack.sdk.version,
                    ami=stack.ami.release,
                    driver=stack.ami.driver,
                    role="serving+compile"
                    if stack.workload("compile") and workload.role == "serving"
                    else workload.role,
                    image=f"{workload.image.repository}:{workload.image.tag}",
                    runtime=workload.runtime,
                    verdict=verdict,
                )
            )
    for spec in config.serving.endpoints:
        if spec.backend != "sagemaker":
            continue
        plan = config.plan_endpoint(spec)
        rows.append(
            MatrixRow(
                where=f"endpoint {spec.name} (sagemaker)",
                family=spec.target.value,
                sdk=plan.compile_sdk,
                ami="SageMaker",
                driver="SageMaker",
                role="serving+compile",
                image=plan.serving_image,
                runtime=plan.runtime,
                verdict="SageMaker manages the hosts' driver",
            )
        )
    return rows


HEADER = ("where", "family", "Neuron SDK", "AMI", "driver", "workload", "image", "runtime", "verdict")


def _cells(row: MatrixRow) -> tuple[str, ...]:
    return (row.where, row.family, row.sdk, row.ami, row.driver, row.role, row.image, row.runtime, row.verdict)


def matrix_lines(config: PlatformConfig) -> list[str]:
    """The matrix as aligned text columns (the verdict last, unpadded)."""
    rows = [HEADER, *(_cells(r) for r in matrix(config))]
    widths = [max(len(r[c]) for r in rows) for c in range(len(HEADER) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]) for row in rows]


def matrix_markdown(configs: Mapping[str, PlatformConfig]) -> str:
    """One Markdown table over several configs (config name first)."""
    lines = [
        "| config | " + " | ".join(HEADER) + " |",
        "|" + "---|" * (len(HEADER) + 1),
    ]
    for name, config in configs.items():
        for row in matrix(config):
            cells = [name, *_cells(row)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def rule_lines() -> list[str]:
    """The compatibility rules in force, each with the file and line it was read from."""
    data = load()
    sources = [r.source for r in data.driver_rules] + [r.source for r in data.family_rules]
    return [f"rule: {source}" for source in sources]


MATRIX_START = "<!-- neuron-matrix:start -->"
MATRIX_END = "<!-- neuron-matrix:end -->"


def with_matrix(document: str, configs: Mapping[str, PlatformConfig]) -> str:
    """``document`` with the block between the matrix markers replaced by the current table."""
    head, _, rest = document.partition(MATRIX_START)
    _, _, tail = rest.partition(MATRIX_END)
    return f"{head}{MATRIX_START}\n{matrix_markdown(configs)}{MATRIX_END}{tail}"
