"""docs/helm-releases.md, as `make helm-releases` writes it: the shipped configs, synthesized and rendered."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.conftest import ALL_CONFIGS, config_id, synthesize
from tests.helm_render import RELEASES_DOC, Release, app_releases, with_release_table


def current(by_config: dict[str, list[Release]]) -> str:
    return with_release_table(RELEASES_DOC.read_text(), by_config)


def write() -> None:
    root = Path(tempfile.mkdtemp())
    by_config = {config_id(p): app_releases(synthesize(p, root / config_id(p)).outdir) for p in ALL_CONFIGS}
    RELEASES_DOC.write_text(current(by_config))
