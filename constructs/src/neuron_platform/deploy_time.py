"""How long ``cdk deploy`` takes, modelled from the synthesized templates.

Plain Python over a cloud assembly (``cdk.out``). CloudFormation creates a resource once
everything it references exists, and runs independent resources in parallel, so a stack's
create time is about its longest dependency chain (references through ``Ref``,
``Fn::GetAtt`` and ``Fn::Sub``, and ``DependsOn``), each resource weighted by a typical
create time from :data:`CREATE_MINUTES`. ``cdk deploy --all --concurrency N`` then deploys
stacks as their dependencies finish, at most N at a time.

The weights are estimates with their sources; the point of the model is the chain (what
waits for what), which the tests hold: a serialization that could be avoided shows up as a
longer chain.

Usage: ``python -m neuron_platform.deploy_time CDK_OUT [--concurrency N]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CreateTime:
    minutes: float
    source: str


# Typical create times. Resources not listed take DEFAULT_MINUTES.
CREATE_MINUTES: dict[str, CreateTime] = {
    "AWS::EKS::Cluster": CreateTime(10, "EKS control plane: about 10 min (issue 16 measurements; EKS user guide)"),
    "AWS::EKS::Nodegroup": CreateTime(4, "managed node group to ACTIVE: about 4 min (issue 16)"),
    "AWS::EKS::Addon": CreateTime(1, "EKS add-on to ACTIVE: about 1 min (issue 16)"),
    "AWS::EKS::PodIdentityAssociation": CreateTime(0.2, "API call, no waiting (estimate)"),
    "AWS::EKS::AccessEntry": CreateTime(0.2, "API call, no waiting (estimate)"),
    "Custom::AWSCDK-EKS-HelmChart": CreateTime(2, "helm upgrade --install with wait: about 2 min (issue 16)"),
    "Custom::AWSCDK-EKS-KubernetesResource": CreateTime(
        0.5, "kubectl apply through the handler: about 30 s (issue 16)"
    ),
    "AWS::FSx::FileSystem": CreateTime(10, "FSx for Lustre file system: about 10 min (issue 16)"),
    "AWS::FSx::DataRepositoryAssociation": CreateTime(3, "data repository association: a few minutes (estimate)"),
    "AWS::SageMaker::Endpoint": CreateTime(10, "SageMaker endpoint InService: about 10 min (issue 16)"),
    "AWS::EC2::NatGateway": CreateTime(2, "NAT gateway available: 1-2 min (estimate)"),
    "AWS::EC2::VPCEndpoint": CreateTime(2, "interface endpoint available: about 2 min (estimate)"),
    "AWS::APS::Scraper": CreateTime(5, "managed collector ACTIVE: several minutes (estimate)"),
    "AWS::APS::Workspace": CreateTime(1, "workspace ACTIVE: about 1 min (estimate)"),
    "AWS::Batch::ComputeEnvironment": CreateTime(1, "compute environment VALID: about 1 min (estimate)"),
    "AWS::Lambda::Function": CreateTime(0.3, "function Active: seconds (estimate)"),
    "AWS::IAM::Role": CreateTime(0.3, "IAM role with propagation: seconds (estimate)"),
    "AWS::KMS::Key": CreateTime(0.3, "KMS key: seconds (estimate)"),
}
DEFAULT_MINUTES = 0.1


def create_minutes(resource_type: str) -> float:
    time = CREATE_MINUTES.get(resource_type)
    return time.minutes if time else DEFAULT_MINUTES


def _references(value: Any) -> Iterator[str]:
    """Logical ids ``value`` refers to (Ref, Fn::GetAtt, Fn::Sub's ${Id} and ${Id.Attr})."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else str(item).split(".")[0]
                yield str(target)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                if isinstance(text, str):
                    yield from (m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
                if isinstance(item, list) and len(item) > 1:
                    yield from _references(item[1])
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def dependencies(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """Logical id -> the resources it waits for."""
    resources = template.get("Resources", {})
    out: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        deps = set(_references(resource.get("Properties", {})))
        depends_on = resource.get("DependsOn", [])
        deps |= {depends_on} if isinstance(depends_on, str) else set(depends_on)
        out[logical_id] = {d for d in deps if d in resources and d != logical_id}
    return out


@dataclass(frozen=True)
class Step:
    logical_id: str
    type: str
    minutes: float


@dataclass(frozen=True)
class StackTime:
    stack: str
    minutes: float
    chain: tuple[Step, ...]

    def chain_text(self) -> str:
        return " > ".join(f"{s.logical_id} ({_type_name(s.type)} {s.minutes:g})" for s in self.chain)


def _type_name(resource_type: str) -> str:
    return resource_type.split("::")[-1]


def critical_path(template: Mapping[str, Any], stack: str = "") -> StackTime:
    """The longest weighted dependency chain of ``template``."""
    resources = template.get("Resources", {})
    deps = dependencies(template)
    finish: dict[str, float] = {}
    previous: dict[str, str | None] = {}

    def visit(logical_id: str, trail: frozenset[str]) -> float:
        if logical_id in finish:
            return finish[logical_id]
        if logical_id in trail:
            raise ValueError(f"{stack}: dependency cycle through {logical_id}")
        best, best_dep = 0.0, None
        for dep in sorted(deps[logical_id]):
            done = visit(dep, trail | {logical_id})
            if done > best:
                best, best_dep = done, dep
        finish[logical_id] = best + create_minutes(resources[logical_id]["Type"])
        previous[logical_id] = best_dep
        return finish[logical_id]

    for logical_id in resources:
        visit(logical_id, frozenset())
    if not finish:
        return StackTime(stack, 0.0, ())
    end = max(finish, key=lambda k: (finish[k], k))
    chain: list[Step] = []
    node: str | None = end
    while node is not None:
        resource_type = resources[node]["Type"]
        chain.append(Step(node, resource_type, create_minutes(resource_type)))
        node = previous[node]
    return StackTime(stack, round(finish[end], 2), tuple(reversed(chain)))


@dataclass(frozen=True)
class Assembly:
    """Stacks of a cloud assembly, their templates and the stacks each depends on."""

    templates: dict[str, dict[str, Any]]
    stack_dependencies: dict[str, set[str]]

    @classmethod
    def read(cls, outdir: Path) -> Assembly:
        manifest = json.loads((outdir / "manifest.json").read_text())
        artifacts = manifest["artifacts"]
        stacks = {n: a for n, a in artifacts.items() if a["type"] == "aws:cloudformation:stack"}
        templates = {n: json.loads((outdir / a["properties"]["templateFile"]).read_text()) for n, a in stacks.items()}
        deps = {n: {d for d in a.get("dependencies", []) if d in stacks} for n, a in stacks.items()}
        return cls(templates, deps)


@dataclass(frozen=True)
class DeployPlan:
    stacks: dict[str, StackTime]
    # stack -> (start, end) minutes
    schedule: dict[str, tuple[float, float]]
    concurrency: int

    @property
    def minutes(self) -> float:
        return max((end for _, end in self.schedule.values()), default=0.0)

    @property
    def critical_stacks(self) -> list[str]:
        """The chain of stacks that ends last, first to last."""
        if not self.schedule:
            return []
        last = max(self.schedule, key=lambda s: self.schedule[s][1])
        chain = [last]
        while True:
            start = self.schedule[chain[-1]][0]
            before = [s for s, (_, end) in self.schedule.items() if end == start and s not in chain]
            if start == 0 or not before:
                return list(reversed(chain))
            chain.append(sorted(before)[0])


def deploy_plan(assembly: Assembly, *, concurrency: int = 1) -> DeployPlan:
    """``cdk deploy --all --concurrency N``: a stack starts when its dependencies are done and
    a slot is free (in the CLI's order: dependencies first, then name)."""
    times = {name: critical_path(t, name) for name, t in assembly.templates.items()}
    done: dict[str, float] = {}
    running: dict[str, float] = {}
    schedule: dict[str, tuple[float, float]] = {}
    now = 0.0
    pending = sorted(assembly.templates)
    while pending or running:
        ready = [s for s in pending if assembly.stack_dependencies[s] <= set(done)]
        while ready and len(running) < concurrency:
            stack = ready.pop(0)
            pending.remove(stack)
            running[stack] = now + times[stack].minutes
            schedule[stack] = (now, running[stack])
        if not running:
            raise ValueError(f"stacks waiting on each other: {pending}")
        stack = min(running, key=lambda s: (running[s], s))
        now = running.pop(stack)
        done[stack] = now
    return DeployPlan(times, schedule, concurrency)


def report_lines(plan: DeployPlan, *, title: str = "") -> list[str]:
    head = f"{title}: " if title else ""
    lines = [f"{head}cdk deploy --all --concurrency {plan.concurrency}: about {plan.minutes:.0f} min"]
    for stack, (start, end) in sorted(plan.schedule.items(), key=lambda kv: kv[1]):
        time = plan.stacks[stack]
        lines.append(f"  {stack}: {time.minutes:.1f} min (from {start:.1f} to {end:.1f})")
        lines.append(f"    {time.chain_text()}")
    return lines


def summary_table(assemblies: Mapping[str, Assembly], *, concurrency: int) -> list[str]:
    """Per config: the modelled ``cdk deploy --all`` one stack at a time and with
    ``concurrency``, and its longest stack chain (the README's table)."""
    lines = [
        f"| Config | `cdk deploy --all` | `--concurrency {concurrency}` | Longest stack |",
        "| --- | --- | --- | --- |",
    ]
    for name, assembly in assemblies.items():
        serial = deploy_plan(assembly, concurrency=1)
        parallel = deploy_plan(assembly, concurrency=concurrency)
        longest = max(serial.stacks.values(), key=lambda t: t.minutes)
        lines.append(
            f"| {name} | {serial.minutes:.0f} min | {parallel.minutes:.0f} min | "
            f"{longest.stack} {longest.minutes:.0f} min |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neuron_platform.deploy_time", description=__doc__.split("\n")[0])
    parser.add_argument("assembly", nargs="?", default="cdk.out", help="cdk synth output directory")
    parser.add_argument("--concurrency", type=int, default=1, help="cdk deploy --concurrency")
    args = parser.parse_args(argv)
    outdir = Path(args.assembly)
    if not (outdir / "manifest.json").is_file():
        print(f"deploy_time: {outdir} is not a synthesized cloud assembly (run make synth first)", file=sys.stderr)
        return 2
    print("\n".join(report_lines(deploy_plan(Assembly.read(outdir), concurrency=args.concurrency))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
