"""The vendored Neuron data: unmodified, and read the way upstream wrote it."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from neuron_platform import neuron_data
from neuron_platform.facts import Family
from neuron_platform.neuron_data import DATA_DIR, UnknownNeuronData, load, parse
from tests.conftest import REPO

SHARED = REPO.parent / "shared" / "neuron"
SOURCE = (DATA_DIR / "SOURCE.txt").read_text()


def _recorded_hashes() -> dict[str, str]:
    return {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", SOURCE, re.M)}


def test_every_vendored_file_has_its_recorded_sha256() -> None:
    files = sorted(
        p.relative_to(DATA_DIR).as_posix() for p in DATA_DIR.rglob("*") if p.is_file() and p.name != "SOURCE.txt"
    )
    recorded = _recorded_hashes()
    assert sorted(recorded) == files
    for name in files:
        assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == recorded[name], name


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/neuron is not beside this checkout")
def test_copies_of_the_shared_neuron_data_are_byte_identical() -> None:
    for source in sorted(SHARED.glob("*")):
        if source.name == "SOURCE.txt":
            continue
        assert (DATA_DIR / source.name).read_bytes() == source.read_bytes(), source.name


def test_source_names_repository_commit_and_path_of_each_file() -> None:
    for needle in (
        "https://github.com/aws-neuron/aws-neuron-sdk",
        "81ce03ae261e12925e53437a0f690478e6366155",
        "src/helperscripts/n2-manifest.json",
        "https://github.com/aws-neuron/deep-learning-containers",
        "https://github.com/awslabs/amazon-eks-ami",
        "https://github.com/aws-neuron/neuronx-distributed-training",
        "https://github.com/aws/deep-learning-containers",
        "docs/src/data/huggingface-vllm-inference-neuronx/0.11-neuronx-sdk2.26.1.yml",
    ):
        assert needle in SOURCE


def test_the_manifest_gives_driver_runtime_and_compiler_per_release() -> None:
    data = load()
    release = data.release("2.26.1")
    assert (release.driver, release.runtime, release.compiler) == ("2.24.7.0", "2.28.23.0", "2.21.33363.0")
    assert data.release("2.31.0").runtime == "2.33.10.0"  # the first runtime driver 2.29 accepts
    assert release.supports(Family.TRN1N)  # listed as trn1 upstream


def test_unknown_release_names_the_file_to_update() -> None:
    with pytest.raises(UnknownNeuronData, match=r"Neuron SDK 2\.99\.0 is not in n2-manifest\.json .*add"):
        load().release("2.99.0")


def test_ami_releases_carry_the_driver_the_changelog_lists() -> None:
    data = load()
    assert data.ami("v20260714", "1.36").driver == "2.29.0.0"
    assert data.ami("v20260625", "1.36").driver == "2.28.0.0"
    assert [a.release for a in data.amis_for("1.36")] == ["v20260714", "v20260625", "v20260618", "v20260610"]
    # The release the platform pinned before this data existed is not in it.
    with pytest.raises(UnknownNeuronData, match=r"AMI release v20260903 for Kubernetes 1\.36 is not in"):
        data.ami("v20260903", "1.36")


def test_dlc_table_rows_become_images_with_sdk_families_and_packages() -> None:
    data = load()
    image = data.image(
        "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04"
    )
    assert image.sdk == "2.28.0"
    assert image.families == ("trn1", "trn2", "trn3", "inf2")
    assert image.has_package("neuronx_distributed_inference")
    assert data.image_runtime(image) == "2.30.51.0"
    plugin = data.image(
        "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.24.0.1.1.0-neuronx-py313-sdk2.32.0-ubuntu24.04"
    )
    assert plugin.families == ("trn2", "trn3")
    assert plugin.has_package("vllm-neuron")
    with pytest.raises(UnknownNeuronData, match=r"is not in neuron-dlc-images\.md"):
        data.image("public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:9.9.9-neuronx-py312-sdk2.99.0-ubuntu24.04")


def test_the_sagemaker_image_comes_from_the_dlc_image_data() -> None:
    (image,) = load().images_in("huggingface-vllm-inference-neuronx")
    assert image.tag == "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04"
    assert image.sdk == "2.26.1"
    assert "inf2" in image.families


def test_rules_are_read_from_the_release_notes_with_their_lines() -> None:
    data = load()
    sources = [(r.source.file, r.source.line) for r in data.driver_rules]
    assert sources == [
        ("runtime-release-notes.rst", 329),
        ("runtime-release-notes.rst", 435),
        ("runtime-release-notes.rst", 981),
    ]
    lines = (DATA_DIR / "runtime-release-notes.rst").read_text().splitlines()
    for rule in data.driver_rules:
        assert rule.source.text.split(": ")[-1] in lines[rule.source.line - 1]
    (nxdi,) = data.family_rules
    assert (nxdi.sdk_from, nxdi.families, nxdi.last_supported) == ("2.29.0", ("trn1", "inf2"), "2.28")


@pytest.mark.parametrize(
    ("runtime", "driver", "family", "broken"),
    [
        ("2.28.23.0", "2.29.0.0", Family.TRN1, [329]),  # SDK 2.26.1 image on AMI v20260714
        ("2.32.31.0", "2.29.0.0", Family.TRN2, [329]),  # the last training DLC (SDK 2.30.0) on it too
        ("2.33.10.0", "2.29.0.0", Family.TRN1, []),
        ("2.28.23.0", "2.28.0.0", Family.TRN1, []),
        ("2.32.31.0", "2.26.10.0", Family.INF2, [435]),
        ("2.26.42.0", "2.21.37.0", Family.TRN2, [981]),
        ("2.26.42.0", "2.21.37.0", Family.INF2, []),  # the dkms 2.22 rule is Trainium2 only
    ],
)
def test_driver_rules_judge_runtime_driver_pairs(runtime: str, driver: str, family: Family, broken: list[int]) -> None:
    found = load().driver_problems(runtime=runtime, driver=driver, family=family)
    assert [r.source.line for r in found] == broken


def test_nxd_inference_images_after_2_28_are_unsupported_on_inf2_and_trn1() -> None:
    data = load()
    newer = data.image(
        "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.16.0-neuronx-py312-sdk2.31.1-ubuntu24.04"
    )
    assert newer.families == ("trn1", "trn2", "trn3", "inf2")  # the DLC table still tags it for inf2
    for family in (Family.INF2, Family.TRN1):
        (problem,) = data.image_problems(newer, family)
        assert "nxd-inference-release-notes.rst:61" in problem
    assert data.image_problems(newer, Family.TRN2) == []
    pinned = data.image(
        "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04"
    )
    assert data.image_problems(pinned, Family.INF2) == []


def test_a_new_rule_in_the_notes_is_picked_up(tmp_path: Path) -> None:
    """The rules are the notes' own sentences: a new one changes the verdict without code."""
    copy = tmp_path / "neuron"
    shutil.copytree(DATA_DIR, copy)
    notes = copy / "runtime-release-notes.rst"
    notes.write_text(
        notes.read_text() + "\n* Neuron Driver 2.28 requires Neuron Runtime Library 2.31 or later. Upgrade both.\n"
    )
    data = parse(copy)
    broken = data.driver_problems(runtime="2.30.51.0", driver="2.28.0.0", family=Family.INF2)
    assert [r.source.line for r in broken] == [len(notes.read_text().splitlines())]
    assert load().driver_problems(runtime="2.30.51.0", driver="2.28.0.0", family=Family.INF2) == []


def test_nxd_training_examples_commits_come_from_the_repository_history() -> None:
    data = load()
    version, release = data.nxdt_examples("2.26.1")
    assert version == "1.6.0"
    assert release is not None
    assert release.commit == "9169aa03f39efd4eb02da63891a7ed98defb1714"
    # SDK 2.30.0's manifest lists no NxD Training release, so no examples commit either.
    assert data.nxdt_examples("2.30.0") == (None, None)


def test_version_keys_order_releases() -> None:
    assert neuron_data.version_key("2.29.0.0") > neuron_data.version_key("2.28.0.0")
    assert neuron_data.minor_at_least("2.33.10.0", "2.33")
    assert not neuron_data.minor_at_least("2.32.31.0", "2.33")


def test_the_installed_library_ships_every_data_file() -> None:
    """Synthesis reads the data: the package-data globs must cover every vendored file."""
    import fnmatch
    import tomllib

    patterns = tomllib.loads((REPO / "constructs" / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["neuron_platform"]
    package = DATA_DIR.parent.parent
    for path in DATA_DIR.rglob("*"):
        if path.is_file():
            relative = path.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(relative, p) and relative.count("/") == p.count("/") for p in patterns), relative
