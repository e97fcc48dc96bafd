"""Non-negotiable 7: whatever holds user data survives `cdk destroy` unless the user opts out."""

from __future__ import annotations

from tests.conftest import SynthesizedApp

# Resources that hold data (or the keys to it, or its history).
STATEFUL = (
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::DynamoDB::GlobalTable",
    "AWS::DynamoDB::Table",
    "AWS::ECR::Repository",
    "AWS::Logs::LogGroup",
    "AWS::FSx::FileSystem",
    "AWS::APS::Workspace",
)


def test_every_stateful_resource_of_every_stack_is_retained(synthesized: dict[str, SynthesizedApp]) -> None:
    checked = 0
    for name, app in synthesized.items():
        assert app.config.project.retain_data_on_destroy, name  # the shipped configs keep data
        for stack in app.platform.stacks:
            for logical_id, resource in app.template_json(stack)["Resources"].items():
                if resource["Type"] in STATEFUL:
                    checked += 1
                    where = f"{name}/{stack.stack_name}/{logical_id} ({resource['Type']})"
                    assert resource.get("DeletionPolicy") == "Retain", where
                    assert resource.get("UpdateReplacePolicy") == "Retain", where
    assert (
        checked > 40
    )  # keys, buckets, log groups, the registry, the repository, the file system, the metrics workspace (51 today)
