"""`make bench`: measured synth time against a bare aws_eks_v2 app, and the modelled deploy
time of every shipped config; writes both into the README's "How long things take".

python -m tests.bench.run [--runs N] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from tests.conftest import ALL_CONFIGS, REPO, config_id

CDK = REPO / "node_modules" / ".bin" / "cdk"
README = REPO / "README.md"
BARE_APP = REPO / "tests" / "bench" / "bare_eks_app.py"
DEPLOY_START, DEPLOY_END = "<!-- deploy-times:start -->", "<!-- deploy-times:end -->"
SYNTH_START, SYNTH_END = "<!-- synth-times:start -->", "<!-- synth-times:end -->"
CONCURRENCY = 4
# Synthesis never needs AWS (as in `make synth`).
NO_AWS = {
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | NO_AWS


def time_synth(args: list[str], runs: int, **env: str) -> float:
    """Median wall time of ``cdk synth`` (a new process each run: cold)."""
    samples = []
    for _ in range(runs):
        out = Path(tempfile.mkdtemp(prefix="bench-"))
        started = time.perf_counter()
        done = subprocess.run(
            [str(CDK), "synth", "-q", "--no-notices", "-o", str(out), *args],
            cwd=REPO,
            env=_env() | env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"bench: cdk synth {' '.join(args)} failed:\n{done.stderr}")
        samples.append(time.perf_counter() - started)
        shutil.rmtree(out, ignore_errors=True)
    return statistics.median(samples)


def deploy_table() -> list[str]:
    """The modelled deploy times of every shipped config (deterministic: a test keeps the
    README's copy current)."""
    from neuron_platform.deploy_time import Assembly, summary_table
    from tests.conftest import synthesize

    root = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    assemblies = {config_id(p): Assembly.read(synthesize(p, root / config_id(p)).outdir) for p in ALL_CONFIGS}
    shutil.rmtree(root, ignore_errors=True)
    return summary_table(assemblies, concurrency=CONCURRENCY)


def replace_block(text: str, start: str, end: str, lines: list[str]) -> str:
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n" + "\n".join(lines) + f"\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="synth runs per app (median)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave README.md as it is")
    args = parser.parse_args(argv)
    ours = time_synth(["-c", "config=config/default.yaml"], args.runs)
    bare_app = ["--app", f"{sys.executable} {BARE_APP}"]
    bare = time_synth(bare_app, args.runs)
    bare_unvalidated = time_synth(bare_app, args.runs, CDK_VALIDATION="false")
    empty = time_synth(bare_app, args.runs, BENCH_EMPTY="1", CDK_VALIDATION="false")
    cores = os.cpu_count() or 0
    synth_line = (
        f"Measured by `make bench` on {cores} cores ({date.today().isoformat()}, median of {args.runs} cold runs): "
        f"`cdk synth` of the default config takes {ours:.1f} s; a bare aws_eks_v2 app (one cluster, one chart, "
        f"one manifest) {bare:.1f} s with the CDK's defaults ({ours / bare:.2f}x) and {bare_unvalidated:.1f} s "
        f"without the built-in CloudFormation validation ({ours / bare_unvalidated:.2f}x), as ours runs it; an "
        f"app of one empty stack, the floor of any Python CDK synth, {empty:.1f} s. Targets: at most 1.3x "
        "the bare app and 5 s."
    )
    table = deploy_table()
    print(synth_line)
    print("\n".join(table))
    if not args.no_write:
        text = README.read_text()
        text = replace_block(text, DEPLOY_START, DEPLOY_END, table)
        text = replace_block(text, SYNTH_START, SYNTH_END, [synth_line])
        README.write_text(text)
        print(f"wrote {README.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
