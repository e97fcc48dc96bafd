#!/usr/bin/env python3
"""CDK entry point: ``npx cdk synth -c config=PATH`` (default config/default.yaml)."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

from neuron_platform import versions
from neuron_platform.config import ConfigError, load_config
from stacks import build_platform

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "default.yaml"


def main() -> int:
    app = cdk.App()
    path = app.node.try_get_context("config") or str(DEFAULT_CONFIG)
    try:
        config = load_config(path)
    except ConfigError as err:
        # One line per problem, no traceback: these are the user's to fix.
        print("\n".join(err.messages()), file=sys.stderr)
        return 2
    # A versions.py edit that breaks a known combination stops here, before anything deploys.
    # (The Neuron stack of every pool and endpoint was checked against the data by load_config.)
    problems = versions.check_compatibility()
    if problems:
        print("\n".join(f"versions error: {p}" for p in problems), file=sys.stderr)
        return 2
    build_platform(app, config)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
