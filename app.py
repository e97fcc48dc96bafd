#!/usr/bin/env python3
"""CDK entry point: ``npx cdk synth -c config=PATH`` (default config/default.yaml).

The CDK CLI runs it (the ``app`` command of cdk.json) and passes the context, ``config``
included, in the environment; run directly, it takes no arguments.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from neuron_platform.node_runtime import quiet_node_banner

# Before aws_cdk: importing it starts the jsii runtime under Node.js, which prints an
# end-of-life banner on Node 20 unless told not to.
quiet_node_banner()

import aws_cdk as cdk  # noqa: E402

from neuron_platform import versions  # noqa: E402
from neuron_platform.config import ConfigError, load_config  # noqa: E402
from stacks import build_platform  # noqa: E402

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "default.yaml"


def main() -> int:
    # The CDK's built-in CloudFormation validation costs about as long as the rest of the
    # synthesis; `make test` runs it (CDK_VALIDATION=true in its CLI synth gate) and cfn-lint
    # on every template, so the everyday synth skips it. cdk-nag always runs.
    app = cdk.App(builtin_cloud_formation_validation=os.environ.get("CDK_VALIDATION", "").lower() == "true")
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
    if len(sys.argv) > 1:
        # `python app.py -c config=...` would otherwise synthesize the default config, silently.
        print(
            f"usage error: app.py takes no arguments (got: {' '.join(sys.argv[1:])}); "
            "run make synth CONFIG=PATH or npx cdk synth -c config=PATH",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(main())
