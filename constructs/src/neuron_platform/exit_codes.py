"""Exit codes of ``python -m neuron_platform`` and ``app.py``: one table, documented and tested.

Plain Python. Every command exits with one of these; every non-zero exit prints one line
to stderr (one per problem for a configuration with several), never a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # The command ran and the answer is no: a compile run failed, an endpoint answered
    # with an error.
    FAILED = 1
    # Your input: a bad or missing config, spec, option or name; an unknown AWS profile,
    # missing or expired credentials; a missing tool (boto3, kubectl). Fix and rerun.
    INPUT = 2
    # AWS or the cluster could not give an answer: an API error, a stack that is not
    # deployed, an endpoint that cannot be reached.
    UNAVAILABLE = 3


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done; the check passed, the run succeeded, the endpoint answered",
    ExitCode.FAILED: "the command ran and the answer is no: a compile run failed, an endpoint answered with an error",
    ExitCode.INPUT: (
        "your input: a bad or missing config, spec, option or name (also every config or offering problem); an "
        "unknown AWS profile, missing or expired credentials; a missing tool (boto3, kubectl)"
    ),
    ExitCode.UNAVAILABLE: (
        "AWS or the cluster gave no answer: an API error, a stack that is not deployed, an unreachable endpoint"
    ),
}


def table_lines() -> list[str]:
    """The table as Markdown (docs/cli.md's exit-code table)."""
    lines = ["| Exit code | Meaning |", "| --- | --- |"]
    lines += [f"| {code.value} | {MEANINGS[code]} |" for code in ExitCode]
    return lines
