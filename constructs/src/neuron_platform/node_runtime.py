"""The Node.js under the AWS CDK: which versions work, and jsii's end-of-life banner.

Plain Python, standard library only: it must run before ``aws_cdk`` is imported, because
importing ``aws_cdk`` starts the jsii runtime under Node.js at once, and on a Node.js release
jsii no longer supports that runtime prints an 11-line ``Node 20 is end-of-life`` banner to
stderr (``b'!!!...'`` lines) on every run. Entry points call :func:`quiet_node_banner` first::

    from neuron_platform.node_runtime import quiet_node_banner

    quiet_node_banner()
    import aws_cdk as cdk

Supported Node.js versions: 22 and 24, the releases the CDK supports (jsii 1.142 lists
``^22.0.0``, planned end of life 2027-04-30, and ``^24.0.0``, 2028-04-30). Node.js 20 works
but is end-of-life (2026-04-30; jsii's support ended 2026-10-30). Those three are the
versions we know work; on them the banner is noise and is silenced. On any other version
(18 and older, odd-numbered releases) nothing is silenced: the banner is worth reading there.

How the jsii runtime reads the variables (``checkNode`` in the runtime bundled with the jsii
package, ``jsii/_embedded/jsii/bin__jsii-runtime.js``, jsii 1.142.0):

- a release past jsii's end of support (its end of life plus six months):
  ``JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION`` is read as a comma-separated list of
  major versions and silences only when it includes this major (``20`` or ``18,20``; ``1``
  does not silence Node 20);
- a release past its end of life but still within jsii's support:
  ``JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION``, any non-empty value;
- untested and known-broken versions have their own variables
  (``JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION``,
  ``JSII_SILENCE_WARNING_KNOWN_BROKEN_NODE_VERSION``), which this module never sets.

jsii runs the Node.js named by ``JSII_NODE``, else ``node`` on PATH; so does :func:`node_major`.

Also a script for the Makefile, which exports what it prints:
``python3 -I constructs/src/neuron_platform/node_runtime.py`` prints one ``NAME=value`` line
per variable it would set.
"""

from __future__ import annotations

import os
import re
import subprocess

# The releases the CDK supports, and the end-of-life release that still works.
SUPPORTED_NODE_MAJORS: tuple[int, ...] = (22, 24)
END_OF_LIFE_NODE_MAJORS: tuple[int, ...] = (20,)
KNOWN_WORKING_NODE_MAJORS: tuple[int, ...] = (*END_OF_LIFE_NODE_MAJORS, *SUPPORTED_NODE_MAJORS)

END_OF_LIFE_VARIABLE = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"
DEPRECATED_VARIABLE = "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"

_NODE_VERSION = re.compile(r"v(\d+)\.\d+\.\d+\S*")


def parse_node_major(version: str) -> int | None:
    """The major of ``node --version`` output (``v20.20.2`` -> 20); None for anything else."""
    match = _NODE_VERSION.fullmatch(version.strip())
    return int(match.group(1)) if match else None


def node_major() -> int | None:
    """The major version of the Node.js jsii will start; None when there is none or it cannot tell."""
    node = os.environ.get("JSII_NODE", "node")
    try:
        result = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return parse_node_major(result.stdout) if result.returncode == 0 else None


def silencing_variables(major: int | None) -> dict[str, str]:
    """The variables that silence jsii's banner on Node ``major``: none unless we know it works."""
    if major not in KNOWN_WORKING_NODE_MAJORS:
        return {}
    return {END_OF_LIFE_VARIABLE: str(major), DEPRECATED_VARIABLE: "1"}


def quiet_node_banner() -> dict[str, str]:
    """Silence jsii's Node.js end-of-life banner if the installed Node.js is one we know works.

    Call it before the first ``import aws_cdk``. Sets the variables with
    ``os.environ.setdefault``, so a value already in the environment wins (set
    ``JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=`` to see the banner again). Runs
    ``node --version`` only when a variable is still unset; never fails, also without Node.js.
    Returns the variables this call set.
    """
    if all(name in os.environ for name in (END_OF_LIFE_VARIABLE, DEPRECATED_VARIABLE)):
        return {}
    added: dict[str, str] = {}
    for name, value in silencing_variables(node_major()).items():
        if name not in os.environ:
            added[name] = os.environ.setdefault(name, value)
    return added


if __name__ == "__main__":
    for name, value in quiet_node_banner().items():
        print(f"{name}={value}")
