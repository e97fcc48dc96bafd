"""The README documents every configuration key and the two commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from neuron_platform.config import PlatformConfig
from neuron_platform.validation import nested_model
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


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
    missing = [p for p in paths if f"`{p}`" not in README]
    assert missing == []


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```")[1]
    assert "make synth" in first_block
    assert "make test" in first_block


def test_reuse_examples_run(tmp_path: Path) -> None:
    """The README's "Reusing the constructs" snippets synthesize as written."""
    section = README.split("## Reusing the constructs", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    code = "\n".join(blocks)
    assert code.count("app = App()") == 1
    code = code.replace("app = App()", f"app = App(outdir={str(tmp_path)!r})")  # keep the output in tmp
    exec(compile(code, "README.md", "exec"), {})  # runs our own documentation
    assert (tmp_path / "MyNetwork.template.json").exists()
