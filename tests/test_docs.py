"""The documentation: a short README that starts with the two commands and links to one page
per topic; every configuration key in the reference; every relative link resolving; the
reuse examples running as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from neuron_platform.config import PlatformConfig
from neuron_platform.validation import nested_model
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
DOCS = sorted((REPO / "docs").glob("*.md"))
REFERENCE = (REPO / "docs" / "configuration.md").read_text()
REUSE = (REPO / "docs" / "reuse.md").read_text()


def _paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = nested_model(field.annotation)
        if nested is None:
            yield path
            continue
        is_list = "list" in str(field.annotation)
        if not is_list and prefix:
            yield path  # a nested mapping documented as a whole, e.g. network.existing_vpc
        yield from _paths(nested, f"{path}[]." if is_list else f"{path}.")


def test_every_config_key_is_in_the_reference() -> None:
    paths = list(_paths(PlatformConfig))
    assert "network.existing_vpc.vpc_id" in paths
    assert "pools[].instance_types" in paths
    missing = [p for p in paths if f"`{p}`" not in REFERENCE]
    assert missing == []


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```")[1]
    assert "make synth" in first_block
    assert "make test" in first_block


def test_readme_is_a_landing_page_that_links_every_docs_page() -> None:
    assert len(README.encode()) < 12 * 1024
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", README))
    assert linked == {p.name for p in DOCS}


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors (outside code blocks)."""
    anchors = set()
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = re.match(r"^#+ (.*)", line)
        if match and not in_code:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def _links(path: Path) -> Iterator[tuple[str, str]]:
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if not target.startswith(("http://", "https://", "mailto:")):
                yield line, target


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for doc in [REPO / "README.md", *DOCS]:
        for _, target in _links(doc):
            file_part, _, anchor = target.partition("#")
            resolved = (doc.parent / file_part).resolve() if file_part else doc
            if not resolved.exists():
                broken.append(f"{doc.relative_to(REPO)}: {target} (no such file)")
            elif anchor and anchor not in _anchors(resolved.read_text()):
                broken.append(f"{doc.relative_to(REPO)}: {target} (no such heading)")
    assert broken == []


def test_link_check_catches_a_broken_anchor(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# Title\n\nSee [x](#missing) and [y](#title).\n")
    targets = [t for _, t in _links(doc)]
    assert targets == ["#missing", "#title"]
    assert "missing" not in _anchors(doc.read_text())
    assert "title" in _anchors(doc.read_text())


def test_the_training_example_never_edits_committed_files() -> None:
    training = (REPO / "docs" / "training.md").read_text()
    assert "sed -i" not in training
    assert "docs/training/llama-sft" not in training.split("## Worked example")[1].split("```bash")[1].split("```")[0]


def test_reuse_examples_run(tmp_path: Path) -> None:
    """docs/reuse.md's snippets synthesize as written."""
    blocks = re.findall(r"```python\n(.*?)```", REUSE, re.S)
    assert len(blocks) == 2
    code = "\n".join(blocks)
    assert code.count("app = App()") == 1
    code = code.replace("app = App()", f"app = App(outdir={str(tmp_path)!r})")  # keep the output in tmp
    exec(compile(code, "docs/reuse.md", "exec"), {})  # runs our own documentation
    assert (tmp_path / "MyNetwork.template.json").exists()


def test_reuse_install_lines_are_concrete() -> None:
    assert "pip install ./constructs" in REUSE
    assert re.search(r"pip install \"neuron-platform-constructs @ git\+https://[^\"]+#subdirectory=constructs\"", REUSE)


def test_the_training_examples_step_4_prints_the_committed_jobs(tmp_path: Path) -> None:
    """Run step 4 of the worked example with a stand-in kubectl that keeps what it is given."""
    import subprocess

    import yaml

    training = (REPO / "docs" / "training.md").read_text()
    block = training.split("## Worked example")[1].split("```bash\n")[1].split("```")[0]
    step4 = block[block.index("# 4.") :]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nif [ "$1" = apply ]; then cat > "{tmp_path}/applied-$(date +%s%N).yaml"; fi\n')
    kubectl.chmod(0o755)
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", step4],
        cwd=REPO,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
        check=True,
        capture_output=True,
        text=True,
    )
    applied = [yaml.safe_load(p.read_text()) for p in sorted(tmp_path.glob("applied-*.yaml"))]
    committed = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "docs" / "training").glob("llama-sft-*.yaml"))]
    assert applied == committed
