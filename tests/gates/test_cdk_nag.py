"""cdk-nag AwsSolutions: zero unacknowledged findings, every acknowledgment justified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import aws_sqs as sqs

from neuron_platform.compliance import acknowledge_nag
from neuron_platform.config import load_config
from stacks import build_platform
from tests.conftest import DEFAULT_CONFIG, SynthesizedApp, new_app


def _reports(outdir: Path) -> list[dict]:  # type: ignore[type-arg]
    path = outdir / "validation-report.json"
    if not path.exists():
        return []
    reports: list[dict] = json.loads(path.read_text())["pluginReports"]  # type: ignore[type-arg]
    return reports


def test_every_config_synthesizes_with_no_findings(synthesized: dict[str, SynthesizedApp]) -> None:
    # A finding would have failed app.synth() inside the session fixture already;
    # this checks the written report says the same, and that acknowledgments carry reasons.
    for app in synthesized.values():
        for report in _reports(app.outdir):
            assert report["violations"] == [], (app.name, report["pluginName"])
            for suppressed in report.get("suppressedViolations", []):
                assert len(suppressed.get("reason", "")) >= 40, (app.name, suppressed["ruleName"])


def test_gate_fails_synthesis_on_a_finding(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    platform = build_platform(app, load_config(DEFAULT_CONFIG))
    sqs.Queue(platform.network, "PlainQueue")  # no DLQ, no TLS enforcement: SQS3, SQS4
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    (report,) = [r for r in _reports(tmp_path) if r["pluginName"] == "AwsSolutions"]
    assert {v["ruleName"] for v in report["violations"]} == {"AwsSolutions-SQS3", "AwsSolutions-SQS4"}


def test_acknowledgment_is_narrow_and_recorded(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    platform = build_platform(app, load_config(DEFAULT_CONFIG))
    queue = sqs.Queue(platform.network, "DeadLetters", enforce_ssl=True)
    acknowledge_nag(queue, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the test producer.")
    app.synth()
    (report,) = [r for r in _reports(tmp_path) if r["pluginName"] == "AwsSolutions"]
    assert report["violations"] == []
    ours = [
        s
        for s in report["suppressedViolations"]
        if any(c["constructPath"].startswith("neuron-network/DeadLetters") for c in s["violatingConstructs"])
    ]
    assert [(s["ruleName"], s["acknowledgedId"]) for s in ours] == [
        ("AwsSolutions-SQS3", "AwsSolutions::AwsSolutions-SQS3")
    ]
