"""The command line as a user runs it: ``python -m neuron_platform`` in a subprocess, from the
repository root, with no AWS credentials. Every mistake gets one line on stderr and the exit
code of the documented table, never a traceback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neuron_platform.exit_codes import ExitCode, table_lines
from tests.conftest import REPO

TRAINING = "config/examples/training-multinode.yaml"
INFERENCE = "config/examples/inference-small.yaml"
CLI_DOC = (REPO / "docs" / "cli.md").read_text()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No credentials, an empty AWS config (no profiles), no instance metadata."""
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return clean | {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "neuron_platform", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a refused command (banner lines of an old Node excluded)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("b'")]
    assert len(lines) == 1, result.stderr
    assert result.returncode == code, result.stderr
    return lines[0]


# --- 1. instance types exist in EC2 ---------------------------------------------------------------


def test_a_system_node_type_ec2_does_not_have_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    config = yaml.safe_load((REPO / "config" / "default.yaml").read_text())
    config.setdefault("cluster", {}).setdefault("system_nodes", {})["instance_types"] = ["m7i.xlage"]
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    line = one_line(run(["config", "validate", str(path)], env), ExitCode.INPUT)
    assert line == (
        f"config error: {path}: cluster.system_nodes.instance_types[0]: got 'm7i.xlage', which is not an EC2 "
        "instance type (did you mean m7i.xlarge or m7i.8xlarge?); allowed: a general-purpose EC2 type such as "
        "m7i.xlarge (not Neuron)"
    )


# --- 2. a missing AWS profile ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["compile", "list", "--config", INFERENCE, "--profile", "nosuch"],
        ["config", "check-offerings", INFERENCE, "--profile", "nosuch"],
        ["endpoint", "invoke", "llama3-8b-sm", "hi", "--config", INFERENCE, "--profile", "nosuch"],
    ],
    ids=["compile", "check-offerings", "endpoint"],
)
def test_an_unknown_profile_is_one_line(args: list[str], env: dict[str, str]) -> None:
    line = one_line(run(args, env), ExitCode.INPUT)
    assert line.endswith(
        "AWS profile 'nosuch' not found (from --profile or AWS_PROFILE); list yours with 'aws configure list-profiles'"
    )


def test_an_unknown_aws_profile_variable_is_one_line(env: dict[str, str]) -> None:
    line = one_line(run(["compile", "list", "--config", INFERENCE], env | {"AWS_PROFILE": "nosuch"}), ExitCode.INPUT)
    assert "AWS profile 'nosuch' not found" in line


def test_no_credentials_is_one_line(env: dict[str, str]) -> None:
    line = one_line(run(["compile", "list", "--config", INFERENCE], env), ExitCode.INPUT)
    assert line == (
        "compile list: no AWS credentials: pass --profile NAME, set AWS_PROFILE, or run 'aws configure' / "
        "'aws sso login'"
    )


def test_aws_unreachable_is_exit_3(env: dict[str, str]) -> None:
    offline = env | {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens on the discard port
        "AWS_MAX_ATTEMPTS": "1",
    }
    line = one_line(run(["compile", "list", "--config", INFERENCE], offline), ExitCode.UNAVAILABLE)
    assert line.startswith("compile list: AWS error: Could not connect to the endpoint URL")


# --- 3. one rule for an endpoint's pool --------------------------------------------------------------


def test_plan_refuses_a_spec_whose_pool_the_config_lacks(env: dict[str, str]) -> None:
    args = ["plan", "specs/serving/llama3-8b-inf2.yaml", "--config", TRAINING]
    line = one_line(run(args, env), ExitCode.INPUT)
    assert line == (
        "plan: specs/serving/llama3-8b-inf2.yaml: pool: got 'inf2-large'; allowed: an inference pool: none configured"
    )


# --- 4, 5. impossible training and first-run requests -----------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--instance-type", "trn1.32xlarg"], "--instance-type: got trn1.32xlarg; pool trn1-efa's runtime runs"),
        (["--instance-type", "inf2.48xlarge"], "--instance-type: got inf2.48xlarge;"),
        (["--nodes", "0"], "--nodes: got 0; allowed: 1 to 4"),
        (["--name", "X_bad"], "--name: got 'X_bad'; allowed: 1-63 lowercase letters"),
        (["--pool", "nope"], "--pool: got 'nope', which is not a configured pool"),
    ],
)
def test_train_job_refuses_impossible_jobs(extra: list[str], expected: str, env: dict[str, str]) -> None:
    args = ["train-job", "--config", TRAINING, "--name", "ok", "--pool", "trn1-efa", *extra, "--", "torchrun", "t.py"]
    line = one_line(run(args, env), ExitCode.INPUT)
    assert line.startswith(f"train-job: {TRAINING}: {expected}")


def test_train_job_refuses_an_empty_command(env: dict[str, str]) -> None:
    args = ["train-job", "--config", TRAINING, "--name", "ok", "--pool", "trn1-efa"]
    line = one_line(run(args, env), ExitCode.INPUT)
    assert line.endswith("command: got nothing to run; allowed: the command after '--', e.g. -- torchrun train.py")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["efa-pair", "--pool", "trn1-efa", "--instance-type", "trn1.32xlarg"],
            "--instance-type: got 'trn1.32xlarg'; pool trn1-efa runs trn1.32xlarge",
        ),
        (
            ["efa-pair", "--pool", "trn1-efa", "--instance-type", "inf2.48xlarge"],
            "--instance-type: got 'inf2.48xlarge'; pool trn1-efa runs trn1.32xlarge",
        ),
        (["efa-pair", "--pool", "trn1-dev"], "--pool: trn1-dev has no EFA; allowed: an EFA training pool"),
    ],
)
def test_first_run_refuses_what_the_pool_cannot_run(args: list[str], expected: str, env: dict[str, str]) -> None:
    line = one_line(run(["first-run", *args, "--config", TRAINING], env), ExitCode.INPUT)
    assert line.startswith(f"first-run efa-pair: {TRAINING}: {expected}")


def test_first_run_refuses_a_pool_the_config_lacks(env: dict[str, str]) -> None:
    line = one_line(run(["first-run", "inf2", "--pool", "nope"], env), ExitCode.INPUT)
    assert line == "first-run: config/default.yaml: --pool: got 'nope'; configured pools: inf2-inference"


def test_first_run_efa_pair_defaults_to_the_pools_type(env: dict[str, str]) -> None:
    result = run(["first-run", "efa-pair", "--pool", "trn1n-efa", "--config", TRAINING], env)
    assert result.returncode == 0, result.stderr
    pods = list(yaml.safe_load_all(result.stdout))
    assert pods[0]["spec"]["containers"][0]["resources"]["limits"]["vpc.amazonaws.com/efa"] == "16"


# --- 8. exit codes: one table, documented ------------------------------------------------------------


def test_the_exit_code_table_is_documented() -> None:
    assert "\n".join(table_lines()) in CLI_DOC


def test_every_command_is_documented() -> None:
    from neuron_platform.__main__ import build_parser

    (commands,) = [a for a in build_parser()._actions if hasattr(a, "_name_parser_map")]
    for name in commands._name_parser_map:
        assert f"| `{name}" in CLI_DOC, name


# --- 9. help ----------------------------------------------------------------------------------------


def test_usage_errors_name_commands_not_internal_attributes(env: dict[str, str]) -> None:
    for args in ([], ["config"], ["compile"], ["endpoint"]):
        result = run(args, env)
        assert result.returncode == 2
        assert "required: COMMAND" in result.stderr
        assert "group" not in result.stderr
        assert "action" not in result.stderr


def test_every_option_has_help_and_defaults_are_shown() -> None:
    from neuron_platform.__main__ import build_parser

    parser = build_parser()
    missing = []

    def walk(p: object, path: str) -> None:
        for action in p._actions:  # type: ignore[attr-defined]
            if action.choices and hasattr(action, "_name_parser_map"):
                for name, sub in action._name_parser_map.items():
                    walk(sub, f"{path} {name}")
            elif action.dest != "help" and not action.help:
                missing.append(f"{path}: {action.option_strings or action.dest}")

    walk(parser, "python -m neuron_platform")
    assert missing == []


def test_help_shows_defaults(env: dict[str, str]) -> None:
    result = run(["train-job", "--help"], env)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    assert "whole nodes, one pod each (default: 2)" in text
    assert "the platform config (the pool and its image) (default: config/default.yaml)" in text
    assert "(default: None)" not in text


# --- 10. status without a config, kubectl's own error -------------------------------------------------


def test_compile_status_needs_no_config(env: dict[str, str]) -> None:
    arn = "arn:aws:states:us-west-2:123456789012:execution:neuron-compile:run-1"
    line = one_line(run(["compile", "status", arn], env), ExitCode.INPUT)
    assert "compile.enabled" not in line
    assert line.startswith("compile status: no AWS credentials")


def test_compile_list_without_config_asks_for_it(env: dict[str, str]) -> None:
    line = one_line(run(["compile", "list"], env), ExitCode.INPUT)
    assert line == (
        "compile list: --config: the default config/default.yaml has compile.enabled false; pass --config with "
        "the config you deployed"
    )


def test_endpoint_invoke_shows_kubectls_error(tmp_path: Path, env: dict[str, str]) -> None:
    kubectl = tmp_path / "bin" / "kubectl"
    kubectl.parent.mkdir()
    kubectl.write_text(
        "#!/bin/sh\necho 'error: You must be logged in to the server (Unauthorized)' >&2\nexit 1\n", encoding="utf-8"
    )
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    path_env = env | {"PATH": f"{kubectl.parent}:{env.get('PATH', '')}"}
    line = one_line(
        run(["endpoint", "invoke", "llama3-8b", "hi", "--config", INFERENCE], path_env), ExitCode.UNAVAILABLE
    )
    assert line.startswith(
        "endpoint: kubectl could not read ingress serving/llama3-8b: error: You must be logged in to the server "
        "(Unauthorized); pass --url"
    )
