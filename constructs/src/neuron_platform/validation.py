"""Validation plumbing shared by the configuration and the spec files.

Strict models (unknown keys rejected), YAML reading that turns every file problem into
one line, and the formatter that turns each pydantic error into ``path: problem`` with
the bad value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen, strict, unknown keys rejected: every configuration and spec model."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class Issue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(Exception):
    """A configuration the user must fix. ``lines``: one line per problem."""

    def __init__(self, source: str, lines: Sequence[str]) -> None:
        self.source = source
        self.lines = list(lines)
        super().__init__("\n".join(self.messages()))

    def messages(self) -> list[str]:
        """What the CLI prints: ``config error: <file>: <path>: <problem>``, one per line."""
        return [f"config error: {self.source}: {line}" for line in self.lines]


# --- loading -----------------------------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (a silent override hides typos)."""


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path, root: type[BaseModel]) -> dict[str, Any]:
    """Read a YAML mapping, turning every file problem into :class:`ConfigError`."""
    expected = _keys(root)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except IsADirectoryError:
        raise ConfigError(source, ["is a directory, expected a YAML file"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(source, [f"cannot read file ({err})"]) from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [f"invalid YAML at {where}{err.problem or err.context}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError(source, [f"invalid YAML ({err})"]) from None
    if data is None:
        raise ConfigError(source, [f"file is empty; expected a mapping with keys: {expected}"])
    if not isinstance(data, dict):
        raise ConfigError(source, [f"top level is a {_type_name(data)}; expected a mapping with keys: {expected}"])
    return data


# --- formatting pydantic errors as one line each -----------------------------------

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "float_type": "a number",
}


def format_error(err: Mapping[str, Any], root: type[BaseModel]) -> str:
    """One line for one pydantic error: path, bad value, what is allowed."""
    path = _path(err["loc"])
    kind = err["type"]
    value: Any = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"{path}: unknown key; allowed keys here: {_keys_at(err['loc'][:-1], root)}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind in _EXPECTED:
        return f"{path}: got {value!r} ({_type_name(value)}); expected {_EXPECTED[kind]}"
    if kind == "greater_than_equal":
        return f"{path}: got {value!r}; allowed: {ctx['ge']} or more"
    if kind == "less_than_equal":
        return f"{path}: got {value!r}; allowed: {ctx['le']} or less"
    if kind == "too_short":
        return f"{path}: got {len(value)} item(s); allowed: at least {ctx['min_length']}"
    if kind == "too_long":
        return f"{path}: got {len(value)} item(s); allowed: at most {ctx['max_length']}"
    if kind == "string_pattern_mismatch":
        return f"{path}: got {value!r}; allowed: text matching {ctx['pattern']}"
    if kind == "literal_error":
        return f"{path}: got {value!r}; allowed: {ctx['expected']}"
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
        return f"{path}: {message}"
    return f"{path}: got {value!r}; {err['msg']}"


def _path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _type_name(value: object) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _keys(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def _keys_at(loc: Sequence[str | int], root: type[BaseModel]) -> str:
    """Allowed keys of the model found by walking ``loc`` from the root model."""
    model: type[BaseModel] = root
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        model = nested_model(annotation) or model
    return _keys(model)


def nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = nested_model(arg)
        if found is not None:
            return found
    return None
