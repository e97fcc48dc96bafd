"""Shared fixtures. The app is synthesized once per test session, per example config."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuron_platform.node_runtime import quiet_node_banner

# Before aws_cdk: importing it starts the jsii runtime under Node.js, which prints an
# end-of-life banner on Node 20 unless told not to (also under plain `pytest`, outside make).
quiet_node_banner()

import aws_cdk as cdk  # noqa: E402
import pytest  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from neuron_platform.config import PlatformConfig, load_config  # noqa: E402
from stacks import build_platform  # noqa: E402
from stacks.platform import Platform  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "config" / "default.yaml"
EXAMPLE_CONFIGS = sorted((REPO / "config" / "examples").glob("*.yaml"))
ALL_CONFIGS = [DEFAULT_CONFIG, *EXAMPLE_CONFIGS]
SCHEMAS = REPO.parent / "shared" / "schemas"


def config_id(path: Path) -> str:
    return "default" if path == DEFAULT_CONFIG else path.stem


def cdk_json_context() -> dict[str, Any]:
    """The feature flags the CLI would pass, so in-process synth matches `cdk synth`."""
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
    return context


def new_app(outdir: Path | None = None) -> cdk.App:
    # cfn-lint runs as its own gate, so the CDK's built-in CloudFormation validation
    # (4-5 s per app on two cores) is off in tests; `make synth` keeps it on.
    return cdk.App(
        outdir=str(outdir) if outdir else None,
        context={**cdk_json_context(), "aws:cdk:disable-stack-trace": True},
        builtin_cloud_formation_validation=False,
    )


@dataclass
class SynthesizedApp:
    """One example config, synthesized: stacks, templates and the assembly directory."""

    name: str
    config: PlatformConfig
    platform: Platform
    outdir: Path
    templates: dict[str, Template]

    def template(self, stack: cdk.Stack) -> Template:
        return self.templates[stack.stack_name]

    def template_json(self, stack: cdk.Stack) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.outdir / stack.template_file).read_text())
        return data


def synthesize(path: Path, outdir: Path) -> SynthesizedApp:
    config = load_config(path)
    app = new_app(outdir)
    platform = build_platform(app, config)
    app.synth()
    templates = {stack.stack_name: Template.from_stack(stack) for stack in platform.stacks}
    return SynthesizedApp(config_id(path), config, platform, outdir, templates)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthesizedApp]:
    """Every config (default + examples), synthesized once for the whole session."""
    root = tmp_path_factory.mktemp("cdk-out")
    return {config_id(p): synthesize(p, root / config_id(p)) for p in ALL_CONFIGS}


@pytest.fixture(scope="session")
def default_app(synthesized: dict[str, SynthesizedApp]) -> SynthesizedApp:
    return synthesized["default"]


@pytest.fixture(scope="session")
def inference_app(synthesized: dict[str, SynthesizedApp]) -> SynthesizedApp:
    return synthesized["inference-small"]


@pytest.fixture(scope="session")
def training_app(synthesized: dict[str, SynthesizedApp]) -> SynthesizedApp:
    return synthesized["training-multinode"]


@pytest.fixture(scope="session")
def existing_vpc_app(synthesized: dict[str, SynthesizedApp]) -> SynthesizedApp:
    return synthesized["existing-vpc"]


_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def scrub(template: Any) -> Any:
    """Replace asset hashes so snapshots change only when the infrastructure does."""
    if isinstance(template, dict):
        return {k: scrub(v) for k, v in template.items()}
    if isinstance(template, list):
        return [scrub(v) for v in template]
    if isinstance(template, str):
        return _ASSET_HASH.sub("<asset-hash>", template)
    return template


@pytest.fixture
def clean_aws_env() -> dict[str, str]:
    """An environment with no AWS credentials or config, as on a fresh CI machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("CDK_")}
    env.update(
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env
