"""Snapshots of every stack of every shipped config (asset hashes scrubbed).

Update after an intended change with `make snapshot-update` and review the diff.
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import ALL_CONFIGS, SynthesizedApp, config_id, scrub


@pytest.fixture
def json_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("name", [config_id(p) for p in ALL_CONFIGS])
def test_stack_templates(synthesized: dict[str, SynthesizedApp], name: str, json_snapshot: SnapshotAssertion) -> None:
    app = synthesized[name]
    for stack in app.platform.stacks:
        assert scrub(app.template_json(stack)) == json_snapshot(name=f"{name}-{stack.stack_name}")


def test_scrub_replaces_asset_hashes_only() -> None:
    digest = "ab" * 32
    assert scrub({"S3Key": f"{digest}.zip", "n": 1, "l": [digest]}) == {
        "S3Key": "<asset-hash>.zip",
        "n": 1,
        "l": ["<asset-hash>"],
    }
