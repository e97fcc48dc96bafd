"""The README documents every configuration key and the two commands."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from neuron_platform.config import PlatformConfig, nested_model
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
