"""The entry points a newcomer runs, run as they run them: cdk.json's app command, the CDK CLI,
app.py, pytest and make (issue 14). Each in a subprocess, with the environment a user has."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from neuron_platform import node_runtime
from neuron_platform.node_runtime import (
    DEPRECATED_VARIABLE,
    END_OF_LIFE_VARIABLE,
    node_major,
    parse_node_major,
    quiet_node_banner,
    silencing_variables,
)
from tests.conftest import REPO

PYTHON = REPO / ".venv" / "bin" / "python"
CDK = REPO / "node_modules" / ".bin" / "cdk"
BAD_CONFIG = "project: {name: neuron, region: us-east-1}\nnetwork: {zones: [us-east-1a, us-east-1b], nat_gateway: 1}\n"
BANNER = "!!!!!!"
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def bad_config_line(path: Path) -> str:
    return (
        f"config error: {path}: network.nat_gateway: unknown key; allowed keys here: zones, vpc_cidr, "
        "private_subnet_prefix, public_subnet_prefix, nat_gateways, interface_endpoints, flow_log_retention_days, "
        "secondary_cidr, secondary_subnet_prefix, existing_vpc"
    )


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CONFIG)
    return path


@pytest.fixture
def user_env(clean_aws_env: dict[str, str]) -> dict[str, str]:
    """A user's shell outside make: no jsii silencing variables, no make state, no AWS."""
    return {
        k: v for k, v in clean_aws_env.items() if not k.startswith("JSII_SILENCE_WARNING_") and k not in MAKE_VARIABLES
    }


def app_command() -> str:
    command: str = json.loads((REPO / "cdk.json").read_text())["app"]
    return command


def run(
    args: list[str] | str, env: dict[str, str], cwd: Path = REPO, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    # A string runs through /bin/sh, as the CDK CLI runs cdk.json's app command (spawn with shell: true).
    return subprocess.run(
        args,
        shell=isinstance(args, str),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


# --- (6) cdk.json's app command before the bootstrap -----------------------------------------


def test_the_app_command_without_a_virtualenv_says_to_run_make_synth(tmp_path: Path, user_env: dict[str, str]) -> None:
    """A fresh clone: cdk.json and app.py, no .venv. One line naming `make synth`, exit 2."""
    shutil.copy(REPO / "cdk.json", tmp_path)
    shutil.copy(REPO / "app.py", tmp_path)
    result = run(app_command(), user_env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "make synth" in line
    assert line.startswith("setup error: .venv/bin/python not found")


@pytest.mark.cli
def test_the_pinned_cdk_cli_without_a_virtualenv_shows_the_line(tmp_path: Path, user_env: dict[str, str]) -> None:
    """The same through the real CLI: our line comes first, then the CLI's own failure line (exit 1)."""
    shutil.copy(REPO / "cdk.json", tmp_path)
    shutil.copy(REPO / "app.py", tmp_path)
    result = run([str(CDK), "synth", "--quiet", "--no-notices"], user_env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("setup error: .venv/bin/python not found")
    assert "make synth" in lines[0]
    assert lines[-1].endswith("Subprocess exited with error 2")


def test_the_app_command_runs_app_py_when_the_virtualenv_exists(bad_config: Path, user_env: dict[str, str]) -> None:
    """From the repository root it is `.venv/bin/python app.py` (exec'd), with app.py's exit code: a bad
    config is one line and 2, with no Node.js banner before it (jsii starts when app.py imports aws_cdk)."""
    env = {**user_env, "CDK_CONTEXT_JSON": json.dumps({"config": str(bad_config)})}
    result = run(app_command(), env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [bad_config_line(bad_config)]


# --- (8) a bad config through each entry point -------------------------------------------------


def test_make_synth_of_a_bad_config_exits_2_before_the_cdk_runs(bad_config: Path, user_env: dict[str, str]) -> None:
    """`make synth` validates the config first: our line, make's own trailer, and no CDK output."""
    # The real recipe; `-o` keeps a stale stamp from reinstalling packages from inside a test run.
    keep = ["-o", ".venv/.installed-runtime", "-o", "node_modules/.installed"]
    result = run(["make", "--no-print-directory", *keep, "synth", f"CONFIG={bad_config}"], user_env)
    assert result.returncode == 2
    *ours, trailer = result.stderr.splitlines()
    assert ours == [bad_config_line(bad_config)]
    assert re.fullmatch(r"make: \*\*\* \[(Makefile:\d+: )?synth\] Error 2", trailer)
    assert "==> cdk synth" not in result.stdout  # the CLI never started


def test_app_py_refuses_arguments(user_env: dict[str, str]) -> None:
    """`python app.py -c config=...` used to synthesize the default config and ignore the option."""
    result = run([str(PYTHON), "app.py", "-c", "config=config/examples/existing-vpc.yaml"], user_env, timeout=120)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("usage error: app.py takes no arguments (got: -c config=config/examples/existing-vpc.yaml)")
    assert "make synth CONFIG=PATH" in line


@pytest.mark.cli
def test_the_cdk_cli_reports_a_bad_config_as_exit_1(bad_config: Path, tmp_path: Path, user_env: dict[str, str]) -> None:
    """The CLI turns any app failure into 1 (the README's exit-code note): our line, then the CLI's."""
    result = run(
        [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(tmp_path / "out"), "-c", f"config={bad_config}"],
        user_env,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == bad_config_line(bad_config)
    assert lines[-1].endswith("Subprocess exited with error 2")


# --- (7) jsii's Node.js banner outside make ----------------------------------------------------


def test_importing_aws_cdk_after_quiet_node_banner_prints_nothing(user_env: dict[str, str]) -> None:
    quiet = "from neuron_platform.node_runtime import quiet_node_banner; quiet_node_banner(); import aws_cdk"
    result = run([str(PYTHON), "-c", quiet], user_env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if node_major() == 20:  # the control: without it, this Node.js does print the banner
        loud = run([str(PYTHON), "-c", "import aws_cdk"], user_env, timeout=120)
        assert BANNER in loud.stderr
        assert "end-of-life" in loud.stderr


def test_pytest_prints_no_node_banner(user_env: dict[str, str]) -> None:
    """Plain `pytest`, outside make: conftest.py quiets jsii before it imports aws_cdk."""
    result = run(
        [str(REPO / ".venv" / "bin" / "pytest"), "-s", "-q", "-p", "no:cacheprovider", "--co", "tests/test_app.py"],
        user_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert BANNER not in result.stdout + result.stderr
    assert "end-of-life" not in result.stdout + result.stderr


@pytest.fixture
def fake_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """JSII_NODE (which jsii and node_runtime both honour) at a script; no silencing variable set."""
    node = tmp_path / "node"
    monkeypatch.setenv("JSII_NODE", str(node))
    monkeypatch.delenv(END_OF_LIFE_VARIABLE, raising=False)
    monkeypatch.delenv(DEPRECATED_VARIABLE, raising=False)
    return node


def write_node(node: Path, body: str) -> None:
    node.write_text(f"#!/bin/sh\n{body}\n")
    node.chmod(0o755)


def silencing_env() -> dict[str, str]:
    return {k: os.environ[k] for k in (END_OF_LIFE_VARIABLE, DEPRECATED_VARIABLE) if k in os.environ}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v20.20.2", {END_OF_LIFE_VARIABLE: "20", DEPRECATED_VARIABLE: "1"}),
        ("v22.11.0", {END_OF_LIFE_VARIABLE: "22", DEPRECATED_VARIABLE: "1"}),
        ("v24.0.1", {END_OF_LIFE_VARIABLE: "24", DEPRECATED_VARIABLE: "1"}),
        # Not ones we know work: their banner stays.
        ("v18.20.4", {}),
        ("v21.7.3", {}),
        ("v25.0.0", {}),
        ("v26.1.0", {}),
    ],
)
def test_quiet_node_banner_silences_only_node_versions_we_know_work(
    fake_node: Path, version: str, expected: dict[str, str]
) -> None:
    write_node(fake_node, f"echo {version}")
    assert quiet_node_banner() == expected
    assert silencing_env() == expected


@pytest.mark.parametrize("body", ["exit 1", "echo not-a-version", "echo v20"])
def test_quiet_node_banner_sets_nothing_when_node_gives_no_version(fake_node: Path, body: str) -> None:
    write_node(fake_node, body)
    assert quiet_node_banner() == {}
    assert silencing_env() == {}


def test_quiet_node_banner_without_node(fake_node: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert not fake_node.exists()
    assert quiet_node_banner() == {}
    monkeypatch.delenv("JSII_NODE")
    monkeypatch.setenv("PATH", str(tmp_path))  # no node on PATH either
    assert node_major() is None
    assert quiet_node_banner() == {}
    assert silencing_env() == {}


def test_quiet_node_banner_keeps_what_the_user_set(fake_node: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_node(fake_node, "echo v20.1.0")
    monkeypatch.setenv(END_OF_LIFE_VARIABLE, "")  # "show me the banner"
    assert quiet_node_banner() == {DEPRECATED_VARIABLE: "1"}
    assert silencing_env() == {END_OF_LIFE_VARIABLE: "", DEPRECATED_VARIABLE: "1"}


def test_quiet_node_banner_does_not_run_node_when_both_are_set(
    fake_node: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    write_node(fake_node, f"touch {ran}; echo v20.1.0")
    monkeypatch.setenv(END_OF_LIFE_VARIABLE, "20")
    monkeypatch.setenv(DEPRECATED_VARIABLE, "1")
    assert quiet_node_banner() == {}
    assert not ran.exists()


def test_node_versions() -> None:
    assert parse_node_major("v20.20.2\n") == 20
    assert parse_node_major("v22.0.0-nightly20240101abcdef") == 22
    assert parse_node_major("20.20.2") is None
    assert silencing_variables(None) == {}
    assert node_runtime.SUPPORTED_NODE_MAJORS == (22, 24)
    assert node_runtime.KNOWN_WORKING_NODE_MAJORS == (20, 22, 24)
    installed = shutil.which("node")
    if installed:
        version = subprocess.run([installed, "--version"], capture_output=True, text=True, check=True).stdout
        assert node_major() == int(version.strip().lstrip("v").split(".")[0])


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v22.3.0", [f"{DEPRECATED_VARIABLE}=1", f"{END_OF_LIFE_VARIABLE}=22"]),
        ("v21.0.0", []),
    ],
)
def test_make_exports_what_quiet_node_banner_sets(
    tmp_path: Path, user_env: dict[str, str], version: str, expected: list[str]
) -> None:
    """The Makefile's recipes get the same variables as the Python entry points, from the same rule."""
    node = tmp_path / "node"
    write_node(node, f"echo {version}")
    show = tmp_path / "show.mk"
    show.write_text("show-jsii-env:\n\t@env | grep '^JSII_SILENCE_WARNING_' | sort || true\n")
    result = run(
        ["make", "--no-print-directory", "-f", "Makefile", "-f", str(show), "show-jsii-env"],
        {**user_env, "JSII_NODE": str(node)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


# --- (6, 11) the Makefile: what each target installs, the CDK CLI targets -----------------------

RUNTIME = "pip install --quiet -r requirements.txt"
EDITABLE = "pip install --quiet --no-deps -e ./constructs"
DEV = "-r requirements-dev.txt"
TOOLS = "-r requirements-tools.txt"
NPM = "npm ci"
LAYER_TOOLS = "extract_tools"
INSTALLS = (RUNTIME, EDITABLE, DEV, TOOLS, NPM, LAYER_TOOLS)


def dry_run(*args: str, env: dict[str, str]) -> str:
    """What `make` would run with every stamp out of date (a clean clone), without running it."""
    result = run(["make", "--no-print-directory", "--dry-run", "--always-make", *args], env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("target", "installs"),
    [
        ("synth", {RUNTIME, EDITABLE, NPM}),
        ("bootstrap-runtime", {RUNTIME, EDITABLE, NPM}),
        ("diff", {RUNTIME, EDITABLE, NPM}),
        ("deploy", {RUNTIME, EDITABLE, NPM}),
        ("destroy", {RUNTIME, EDITABLE, NPM}),
        ("cdk", {RUNTIME, EDITABLE, NPM}),
        ("diagram", {RUNTIME, EDITABLE, NPM}),
        ("dashboards", {RUNTIME, EDITABLE}),
        ("render", {RUNTIME, EDITABLE, NPM, LAYER_TOOLS}),
        ("llama-sft-image", {RUNTIME, EDITABLE}),
        ("compile-image", {RUNTIME, EDITABLE}),
        # These import tests.conftest (pytest).
        ("neuron-matrix", {RUNTIME, EDITABLE, DEV}),
        ("helm-releases", {RUNTIME, EDITABLE, DEV, LAYER_TOOLS}),
        ("lint", {RUNTIME, EDITABLE, DEV}),
        ("typecheck", {RUNTIME, EDITABLE, DEV}),
        ("test", set(INSTALLS)),
        ("snapshot-update", set(INSTALLS)),
        ("bench", set(INSTALLS)),
    ],
)
def test_each_target_installs_only_what_it_needs(target: str, installs: set[str], user_env: dict[str, str]) -> None:
    commands = dry_run(target, env=user_env)
    assert {step for step in INSTALLS if step in commands} == installs


def test_make_test_after_make_synth_adds_the_test_tools_only(tmp_path: Path, user_env: dict[str, str]) -> None:
    """Stamps: with the runtime bootstrap current, the full bootstrap installs the rest and nothing again."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "requirements-tools.txt"):
        shutil.copy(REPO / name, tmp_path)
    for name in ("package.json", "package-lock.json", "constructs/pyproject.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    # What `make synth` left: its two stamps, newer than their inputs.
    for stamp in (".venv/.installed-runtime", "node_modules/.installed"):
        (tmp_path / stamp).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / stamp).touch()
    result = run(["make", "--no-print-directory", "--dry-run", "bootstrap"], user_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    commands = result.stdout
    assert {step for step in INSTALLS if step in commands} == {DEV, TOOLS, LAYER_TOOLS}


def test_cdk_targets_use_the_pinned_cli_with_credentials_and_pass_arguments(user_env: dict[str, str]) -> None:
    for target in ("diff", "deploy", "destroy"):
        commands = dry_run(
            target, "CONFIG=config/examples/existing-vpc.yaml", "ARGS=--require-approval never", env=user_env
        ).splitlines()
        assert ".venv/bin/python -m neuron_platform config validate config/examples/existing-vpc.yaml" in commands
        (cdk,) = (c.split() for c in commands if f"/cdk {target}" in c)
        assert cdk == [
            "node_modules/.bin/cdk",
            target,
            "--all",
            "-c",
            "config=config/examples/existing-vpc.yaml",
            "--require-approval",
            "never",
        ]
        assert not any("env -u AWS_" in c for c in commands)  # credentials pass through
    (cdk,) = (
        c.split() for c in dry_run("deploy", "STACKS=a-cluster a-serving", env=user_env).splitlines() if "/cdk " in c
    )
    assert cdk == ["node_modules/.bin/cdk", "deploy", "a-cluster", "a-serving", "-c", "config=config/default.yaml"]
    (cdk,) = (c.split() for c in dry_run("cdk", "ARGS=bootstrap", env=user_env).splitlines() if "/cdk " in c)
    assert cdk == ["node_modules/.bin/cdk", "bootstrap", "-c", "config=config/default.yaml"]


def test_help_lists_every_target_a_user_runs(user_env: dict[str, str]) -> None:
    result = run(["make", "--no-print-directory", "help"], user_env)
    assert result.returncode == 0
    for target in ("synth", "diff", "deploy", "destroy", "cdk", "test", "render", "clean"):
        assert f"make {target} " in result.stdout
